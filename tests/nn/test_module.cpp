// Modules: hierarchical names, strict loading, train/eval, printing, dtype conversion;
// layers against their formulas; attention against a naive loop.
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "models/gpt.h"
#include "nn/ffn/mlp.h"
#include "nn/layers.h"
#include "tests/test_util.h"

using namespace tz;
using namespace tz::nn;

namespace {
struct Tiny : Module {
  Tiny(Generator& gen) {
    a = register_module("a", std::make_shared<Linear>(LinearOptions{.in = 3, .out = 4}, gen));
    list = register_module("layers", std::make_shared<ModuleList>());
    list->push_back(std::make_shared<LayerNorm>(NormOptions{.dim = 4}));
    list->push_back(std::make_shared<Linear>(LinearOptions{.in = 4, .out = 2, .bias = false}, gen));
    scale = register_parameter("scale", ones({1}));
  }
  std::string describe() const override { return "Tiny"; }
  std::shared_ptr<Linear> a;
  std::shared_ptr<ModuleList> list;
  Tensor scale;
};
}  // namespace

TEST_CASE("parameters get hierarchical PyTorch-like names") {
  Generator gen(0);
  Tiny m(gen);
  std::vector<std::string> names;
  for (auto& [n, t] : m.named_parameters()) names.push_back(n);
  CHECK(names ==
        std::vector<std::string>{"scale", "a.weight", "a.bias", "layers.0.weight", "layers.0.bias", "layers.1.weight"});
  CHECK(m.num_parameters() == 1 + 12 + 4 + 4 + 4 + 8);
  for (auto& t : m.parameters()) CHECK(t.requires_grad());
  std::string tree = m.tree("tiny");
  CHECK(tree.find("tiny: Tiny  [33 params]") != std::string::npos);
  CHECK(tree.find("  a: Linear(3 -> 4, bias)  [16 params]") != std::string::npos);
  CHECK(tree.find("    1: Linear(4 -> 2)") != std::string::npos);
  // Counts are grouped by thousands.
  nn::Linear big(nn::LinearOptions{.in = 1000, .out = 1000}, gen);
  CHECK(big.tree("big").find("[1,001,000 params]") != std::string::npos);
  nn::Linear mid(nn::LinearOptions{.in = 10, .out = 10, .bias = false}, gen);
  CHECK(mid.tree("mid").find("[100 params]") != std::string::npos);
}

TEST_CASE("load_state_dict is strict and reports every problem by name") {
  Generator g1(1), g2(2);
  Tiny src(g1), dst(g2);
  auto state = src.state_dict();
  dst.load_state_dict(state);
  CHECK(dst.a->weight.to_vector<float>() == src.a->weight.to_vector<float>());
  // The copy is by value: changing the source later does not touch the destination.
  core::fill_(src.a->weight, 7);
  CHECK(dst.a->weight.to_vector<float>() != src.a->weight.to_vector<float>());

  auto bad = state;
  bad.erase("a.bias");
  bad["extra.weight"] = zeros({2});
  bad["layers.1.weight"] = zeros({3, 3});
  try {
    dst.load_state_dict(bad);
    FAIL("expected an error");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("wrong shape: layers.1.weight (expected [2, 4], got [3, 3])") != std::string::npos);
    CHECK(msg.find("missing: a.bias") != std::string::npos);
    CHECK(msg.find("unexpected: extra.weight") != std::string::npos);
  }
  // Non-strict loading skips missing/unexpected keys but never accepts a wrong shape.
  bad["layers.1.weight"] = zeros({2, 4});
  dst.load_state_dict(bad, /*strict=*/false);
  CHECK(dst.list->at<Linear>(1)->weight.to_vector<float>() == std::vector<float>(8, 0.0f));
}

TEST_CASE("train/eval propagate, to(f64) converts in place") {
  Generator gen(0);
  Tiny m(gen);
  m.eval();
  CHECK_FALSE(m.list->at<LayerNorm>(0)->is_training());
  m.train();
  CHECK(m.a->is_training());
  Tensor w = m.a->weight;
  m.to(DType::f64);
  CHECK(w.dtype() == DType::f64);  // the handle held by the layer sees the conversion
  CHECK(m.a->weight.dtype() == DType::f64);
  CHECK(w.requires_grad());
}

TEST_CASE("registration errors") {
  struct Bad : Module {
    std::string describe() const override { return "Bad"; }
    void twice() {
      register_parameter("w", zeros({1}));
      register_parameter("w", zeros({1}));
    }
    void dotted() { register_parameter("a.b", zeros({1})); }
  } b;
  CHECK_THROWS_WITH_AS(b.twice(), "Module: name 'w' registered twice", Error);
  CHECK_THROWS_AS(b.dotted(), Error);
}

TEST_CASE("layers follow their formulas") {
  Generator gen(3);
  Tensor x = randn({2, 5, 4}, gen, DType::f64);
  LayerNorm ln(NormOptions{.dim = 4});
  ln.to(DType::f64);
  Tensor y = ln.forward(x);
  for (int64_t i = 0; i < 5; ++i) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < 4; ++c) m += x.at({1, i, c}) / 4;
    for (int64_t c = 0; c < 4; ++c) v += std::pow(x.at({1, i, c}) - m, 2) / 4;
    CHECK(y.at({1, i, 2}) == doctest::Approx((x.at({1, i, 2}) - m) / std::sqrt(v + 1e-5)));
  }
  RMSNorm rms(NormOptions{.dim = 4, .eps = 1e-6});
  rms.to(DType::f64);
  Tensor r = rms.forward(x);
  double ms = 0;
  for (int64_t c = 0; c < 4; ++c) ms += std::pow(x.at({0, 3, c}), 2) / 4;
  CHECK(r.at({0, 3, 1}) == doctest::Approx(x.at({0, 3, 1}) / std::sqrt(ms + 1e-6)));
  CHECK_THROWS_WITH_AS(ln.forward(zeros({2, 3}, DType::f64)), "LayerNorm: expected input [..., 4], got [2, 3]", Error);
  CHECK(std::string(find_activation("relu_squared").name) == "relu_squared");
  CHECK_THROWS_WITH_AS(find_activation("gelu2"),
                       "config key 'activation': unknown activation 'gelu2'; did you mean 'gelu'?; valid: relu, "
                       "leaky_relu, prelu, elu, selu, gelu, gelu_tanh, silu, swish, mish, softplus, sigmoid, tanh, "
                       "relu_squared, identity",
                       Error);
  Dropout d(0.5);
  Tensor ones8 = ones({1000});
  Tensor dropped = d.forward(ones8);
  int64_t zeros_n = 0;
  for (float v : dropped.to_vector<float>()) {
    CHECK((v == 0.0f || v == 2.0f));
    zeros_n += v == 0.0f;
  }
  CHECK((zeros_n > 400 && zeros_n < 600));
  d.eval();
  CHECK(d.forward(ones8).to_vector<float>() == ones8.to_vector<float>());
}

TEST_CASE("Module::save and load round trip by name, strictly") {
  Generator g1(1), g2(2);
  Tiny a(g1), b(g2);
  std::string path = std::string(TZ_BINARY_DIR) + "/test_module_roundtrip.safetensors";
  a.save(path, {{"note", "hello"}});
  auto meta = b.load(path);
  CHECK(meta.at("note") == "hello");
  for (auto& [n, t] : a.state_dict()) CHECK(b.state_dict().at(n).to_vector<float>() == t.to_vector<float>());
  // A module with a different layout reports what does not fit, naming the file.
  struct Other : Module {
    Other() { register_parameter("scale", ones({2})); }
    std::string describe() const override { return "Other"; }
  } other;
  CHECK_THROWS_WITH_AS(other.load(path), doctest::Contains("wrong shape: scale (expected [2], got [1])"), Error);
  CHECK_THROWS_WITH_AS(other.load(path), doctest::Contains("test_module_roundtrip.safetensors"), Error);
  std::remove(path.c_str());
}

TEST_CASE("SkipWeightInit: weights left unwritten, every other draw the same") {
  // Two MLPs from one seed, the first built under the guard: the generator ends at the same
  // counter, so a parameter drawn after the skipped weights (here a third layer's) is the
  // same in both; only the skipped weights differ.
  const MLPOptions o{.dim = 8, .hidden = 16, .activation = "gelu"};
  Generator g1(7), g2(7);
  std::unique_ptr<MLP> skipped;
  {
    SkipWeightInit guard;
    skipped = std::make_unique<MLP>(o, g1);
  }
  MLP drawn(o, g2);
  CHECK(g1.counter() == g2.counter());
  CHECK(Linear({.in = 4, .out = 3}, g1).weight.to_vector<float>() ==
        Linear({.in = 4, .out = 3}, g2).weight.to_vector<float>());
  // The guard ends with its scope: a Linear built after it is drawn as usual.
  Generator g3(7), g4(7);
  CHECK(Linear({.in = 4, .out = 3}, g3).weight.to_vector<float>() ==
        randn({3, 4}, g4, DType::f32, 0.0, 0.02).to_vector<float>());
  // Loading fills what the guard left: the skipped model then computes as the drawn one.
  skipped->load_state_dict(drawn.state_dict());
  const Tensor x = randn({2, 8}, g3);
  CHECK(skipped->forward(x).to_vector<float>() == drawn.forward(x).to_vector<float>());
}
