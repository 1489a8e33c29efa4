// The Compressive Transformer's compression functions and losses (models/compression.h):
// shapes, loop references in f64, gradchecks, most_used's selection, the validity mask, the
// locality of the attention-reconstruction loss, and the config errors.
// Shapes: B batch, T queries, n old memories, C width, c rate, m = ceil(n / c).
#include <cmath>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/compression.h"
#include "nn/attention/attention.h"
#include "tests/test_util.h"

using namespace tz;
using models::CompressionOptions;
using models::Compressor;

namespace {

const std::vector<std::string> kFns = {"max", "mean", "conv", "dilated_conv", "most_used"};

std::shared_ptr<Compressor> make(const std::string& fn, int64_t c, int64_t C, DType dtype = DType::f64, double ae = 0,
                                 uint64_t seed = 1) {
  Generator gen(seed);
  auto m = std::make_shared<Compressor>(CompressionOptions{.fn = fn, .rate = c, .dim = C, .ae_weight = ae}, gen);
  m->to(dtype);
  return m;
}

// Pooling over windows jc .. min(jc + c, n) - 1, in plain loops.
Tensor pool_ref(const Tensor& x, int64_t c, bool is_max) {
  const int64_t B = x.size(0), n = x.size(1), C = x.size(2), m = (n + c - 1) / c;
  Tensor y = zeros({B, m, C}, DType::f64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < C; ++i) {
        double acc = is_max ? -INFINITY : 0;
        int64_t count = 0;
        for (int64_t t = j * c; t < std::min(j * c + c, n); ++t, ++count)
          acc = is_max ? std::max(acc, x.at({b, t, i})) : acc + x.at({b, t, i});
        y.set({b, j, i}, is_max ? acc : acc / double(count));
      }
  return y;
}

// y_j = b + sum_k W[:, :, k] x_{jc + dk}, sources past n are zero, in plain loops.
Tensor conv_ref(const Tensor& x, const Tensor& W, const Tensor& bias, int64_t c, int64_t d) {
  const int64_t B = x.size(0), n = x.size(1), C = x.size(2), m = (n + c - 1) / c;
  Tensor y = zeros({B, m, C}, DType::f64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t o = 0; o < C; ++o) {
        double acc = bias.at({o});
        for (int64_t k = 0; k < c; ++k) {
          const int64_t t = j * c + d * k;
          if (t >= n) continue;
          for (int64_t i = 0; i < C; ++i) acc += W.at({o, i, k}) * x.at({b, t, i});
        }
        y.set({b, j, o}, acc);
      }
  return y;
}

// Usage [B, n] with distinct values (no ties), for most_used.
Tensor usage_for(int64_t B, int64_t n, uint64_t seed = 7) {
  Generator g(seed);
  return rand({B, n}, g, DType::f64);
}

// Every element of a gradient exactly zero, or no gradient at all.
bool no_gradient(const Tensor& t) {
  if (!t.grad().defined()) return true;
  for (double v : t.grad().to_vector<double>())
    if (v != 0) return false;
  return true;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace

TEST_CASE("Compressor: output shape of every function for n divisible and not divisible by c") {
  Generator g(3);
  for (const auto& fn : kFns)
    for (int64_t c : {1, 2, 3})
      for (int64_t n : {1, 5, 6, 7, 9}) {
        INFO(fn, " c=", c, " n=", n);
        auto comp = make(fn, c, 4);
        Tensor old = randn({2, n, 4}, g, DType::f64);
        Tensor u = usage_for(2, n);
        const int64_t m = (n + c - 1) / c;
        CHECK(comp->forward(old, u).shape() == Shape{2, m, 4});
        CHECK(comp->compress_mask(ones({2, n}, DType::i64), u).shape() == Shape{2, m});
        CHECK(comp->needs_usage() == (fn == "most_used"));
      }
}

TEST_CASE("Compressor: max and mean with c = 1 are the identity, bit for bit") {
  Generator g(4);
  for (DType dt : {DType::f32, DType::f64})
    for (const char* fn : {"max", "mean"}) {
      Tensor old = randn({3, 11, 5}, g, dt);
      Tensor y = make(fn, 1, 5, dt)->forward(old);
      REQUIRE(y.shape() == old.shape());
      CHECK(y.to_vector<double>() == old.to_vector<double>());
    }
}

TEST_CASE("Compressor: max and mean pooling against a loop reference") {
  Generator g(5);
  double worst = 0;
  for (std::string fn : {"max", "mean"})
    for (int64_t c : {2, 3, 4})
      for (int64_t n : {4, 7, 12}) {
        Tensor old = randn({2, n, 3}, g, DType::f64);
        const double err = testing::max_abs_diff(make(fn, c, 3)->forward(old), pool_ref(old, c, fn == "max"));
        CHECK_MESSAGE(err < 1e-14, fn, " c=", c, " n=", n, " error ", err);
        worst = std::max(worst, err);
      }
  MESSAGE("max/mean vs loop reference: max abs diff ", worst);
}

TEST_CASE("Compressor: conv and dilated_conv against a loop reference in f64") {
  Generator g(6);
  double worst = 0;
  for (std::string fn : {"conv", "dilated_conv"})
    for (int64_t c : {1, 2, 3, 4})
      for (int64_t n : {1, 6, 7, 8, 13}) {
        auto comp = make(fn, c, 5);
        // Weights far from the mean-pooling init, so every tap and mixing entry matters.
        Tensor W = randn({5, 5, c}, g, DType::f64), bias = randn({5}, g, DType::f64);
        comp->load_state_dict({{"conv.weight", W}, {"conv.bias", bias}});
        Tensor old = randn({2, n, 5}, g, DType::f64);
        const int64_t d = fn == "dilated_conv" ? 2 : 1;
        const double err = testing::max_abs_diff(comp->forward(old), conv_ref(old, W, bias, c, d));
        CHECK_MESSAGE(err < 1e-12, fn, " c=", c, " n=", n, " error ", err);
        worst = std::max(worst, err);
      }
  MESSAGE("conv/dilated_conv vs loop reference: max abs diff ", worst);
}

TEST_CASE("Compressor: the conv starts near mean pooling, parameter names") {
  Generator g(8);
  auto comp = make("conv", 3, 8, DType::f64, 0.5);
  auto sd = comp->state_dict();
  for (const char* name : {"conv.weight", "conv.bias", "decoder.weight", "decoder.bias"}) CHECK(sd.count(name) == 1);
  CHECK(sd.size() == 4);
  CHECK(sd["conv.weight"].shape() == Shape{8, 8, 3});
  CHECK(sd["decoder.weight"].shape() == Shape{24, 8});
  CHECK(make("mean", 3, 8)->state_dict().empty());
  Tensor old = randn({2, 12, 8}, g, DType::f64);
  const double rel = testing::rel_rms(comp->forward(old), make("mean", 3, 8)->forward(old));
  MESSAGE("conv at init vs mean pooling: rel rms ", rel);
  CHECK(rel < 0.3);
  CHECK(rel > 0);  // the noise breaks the symmetry between channels
}

TEST_CASE("Compressor: f64 gradcheck of every function w.r.t. old and the conv parameters") {
  Generator g(9);
  for (const auto& fn : kFns)
    for (int64_t n : {6, 7}) {
      auto comp = make(fn, 3, 4);
      Tensor old = randn({2, n, 4}, g, DType::f64).requires_grad_();
      Tensor u = usage_for(2, n);
      std::vector<Tensor> inputs = {old};
      if (comp->conv) inputs.insert(inputs.end(), {comp->conv->weight, comp->conv->bias});
      GradcheckResult r = gradcheck([&](const std::vector<Tensor>&) { return comp->forward(old, u); }, inputs);
      CHECK_MESSAGE(r.ok, fn, " n=", n, ": ", r.report);
      MESSAGE(fn, " n=", n, " gradcheck max error ", r.max_abs_error);
    }
}

TEST_CASE("Compressor: most_used keeps the most-used slots in time order and needs usage") {
  auto comp = make("most_used", 3, 2);
  // n = 7, c = 3: m = 3 kept slots. Row 0: slots 3, 1, 5 are the most used; row 1: slot 4, then
  // the tie 0.2 among 1, 2, 5 keeps the earlier 1 and 2.
  Tensor usage = tensor({0.1, 0.5, 0.2, 0.9, 0.0, 0.3, 0.05,  //
                         0.0, 0.2, 0.2, 0.0, 0.7, 0.2, 0.0},
                        {2, 7}, DType::f64);
  Tensor old = arange(0, 28, 1, DType::f64).view({2, 7, 2});  // old[b, t, i] = 14 b + 2 t + i
  Tensor y = comp->forward(old, usage);
  const std::vector<std::vector<int64_t>> kept = {{1, 3, 5}, {1, 2, 4}};
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t i = 0; i < 2; ++i) CHECK(y.at({b, j, i}) == double(14 * b + 2 * kept[b][j] + i));
  Tensor valid = tensor({1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1}, {2, 7}).to(DType::i64);
  CHECK(comp->compress_mask(valid, usage).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 1, 1, 1, 0});
  CHECK_THROWS_WITH_AS(comp->forward(old), doctest::Contains("most_used needs the usage [B, n] = [2, 7]"), Error);
  CHECK_THROWS_WITH_AS(comp->forward(old, zeros({2, 6}, DType::f64)), doctest::Contains("expected usage [2, 7]"),
                       Error);
  CHECK_THROWS_AS(comp->compress_mask(valid), Error);
}

TEST_CASE("Compressor: compress_mask marks a slot real when any source is") {
  // n = 7, c = 3; only slot 4 is real. Windows {0,1,2}, {3,4,5}, {6}: slot 1 is real.
  // dilated_conv's taps {0,2,4}, {3,5}, {6}: slot 0 is real.
  Tensor valid = tensor({0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0}, {2, 7}).to(DType::i64);
  for (std::string fn : {"max", "mean", "conv"})
    CHECK(make(fn, 3, 2)->compress_mask(valid).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0, 1, 0, 0});
  CHECK(make("dilated_conv", 3, 2)->compress_mask(valid).to_vector<int64_t>() ==
        std::vector<int64_t>{1, 0, 0, 1, 0, 0});
  CHECK(make("max", 1, 2)->compress_mask(valid).to_vector<int64_t>() == valid.to_vector<int64_t>());
  CHECK_THROWS_AS(make("max", 3, 2)->compress_mask(valid.to(DType::f64)), Error);
}

TEST_CASE("Compressor: the auto-encoding loss trains the compressor and g, not the memories") {
  Generator g(10);
  auto comp = make("conv", 3, 4, DType::f64, 1.0);
  Tensor old = randn({2, 7, 4}, g, DType::f64).requires_grad_();
  Tensor loss = comp->autoencoding_loss(old);
  MESSAGE("L_ae at init: ", loss.item());
  CHECK(loss.item() > 0);
  loss.backward();
  CHECK(no_gradient(old));
  CHECK(max_abs(comp->conv->weight.grad()) > 0);
  CHECK(max_abs(comp->decoder->weight.grad()) > 0);
  GradcheckResult r = gradcheck([&](const std::vector<Tensor>&) { return comp->autoencoding_loss(old); },
                                {comp->conv->weight, comp->conv->bias, comp->decoder->weight, comp->decoder->bias});
  CHECK_MESSAGE(r.ok, r.report);
  MESSAGE("L_ae gradcheck max error ", r.max_abs_error);
  CHECK_THROWS_WITH_AS(make("conv", 3, 4)->autoencoding_loss(old), doctest::Contains("compress_ae_loss"), Error);
}

TEST_CASE("Compressor: the attention-reconstruction loss is local to the compressor") {
  Generator gen(11);
  for (const char* cfg : {"{}", R"({"attn_kv_heads": 1})"}) {
    INFO(cfg);
    nn::ModelDims dims{.dim = 8, .heads = 2, .context = 16};
    nn::Attention layer(nn::attention_options(dims, nn::Config::parse(cfg)), gen);
    layer.to(DType::f64);
    // Projections of std 0.4 instead of GPT-2's 0.02: peaked attention, a loss of order 1e-2 and
    // gradients large enough for the gradcheck's tolerances to mean something.
    const Tensor& w = layer.qkv->weight;
    layer.load_state_dict({{"qkv.weight", randn(w.shape(), gen, DType::f64, 0, 0.4)}}, false);
    Tensor h = randn({2, 5, 8}, gen, DType::f64).requires_grad_();
    Tensor old = randn({2, 6, 8}, gen, DType::f64).requires_grad_();

    // c = 1 mean pooling is the identity: nothing to reconstruct.
    auto same = make("mean", 1, 8);
    CHECK(models::attention_reconstruction_loss(layer, h, old, same->forward(old.detach())).item() == 0.0);

    auto comp = make("conv", 2, 8);
    Tensor loss = models::attention_reconstruction_loss(layer, h, old, comp->forward(old.detach()));
    MESSAGE("L_attn of the conv at init (c = 2): ", loss.item());
    CHECK(loss.item() > 0);
    layer.zero_grad();
    loss.backward();
    CHECK(no_gradient(h));
    CHECK(no_gradient(old));
    for (const auto& [name, p] : layer.named_parameters()) CHECK_MESSAGE(no_gradient(p), name);
    MESSAGE("max |dL_attn/dW_conv| ", max_abs(comp->conv->weight.grad()));
    CHECK(max_abs(comp->conv->weight.grad()) > 0);
    CHECK(max_abs(comp->conv->bias.grad()) > 0);

    GradcheckResult r = gradcheck(
        [&](const std::vector<Tensor>&) {
          return models::attention_reconstruction_loss(layer, h, old, comp->forward(old.detach()));
        },
        {comp->conv->weight, comp->conv->bias});
    CHECK_MESSAGE(r.ok, r.report);
    MESSAGE("L_attn gradcheck max error ", r.max_abs_error);
  }
}

TEST_CASE("Compressor: content_attention is the layer's own attention without masks") {
  // A bidirectional layer attending over its own input: layer(x) = attn(x, x) W_o^T + b_o.
  Generator gen(12);
  for (const char* cfg : {"{}", R"({"attn_kv_heads": 2})"}) {
    INFO(cfg);
    nn::ModelDims dims{.dim = 12, .heads = 4, .context = 16, .causal = false};
    nn::Attention layer(nn::attention_options(dims, nn::Config::parse(cfg)), gen);
    layer.to(DType::f64);
    layer.eval();
    const Tensor& w = layer.qkv->weight;
    layer.load_state_dict({{"qkv.weight", randn(w.shape(), gen, DType::f64, 0, 0.4)}}, false);
    Tensor x = randn({2, 7, 12}, gen, DType::f64);
    Tensor ours = linear(models::content_attention(layer, x, x), layer.out->weight, layer.out->bias);
    const double err = testing::max_abs_diff(ours, layer.forward(x, {}));
    MESSAGE("content_attention vs the layer's forward: max abs diff ", err);
    CHECK(err < 1e-12);
  }
}

TEST_CASE("Compressor: read_compression reads the keys and names the bad one") {
  CompressionOptions d = models::read_compression(nn::Config(), 16);
  CHECK(d.fn == "conv");
  CHECK(d.rate == 3);
  CHECK(d.dim == 16);
  CHECK(d.ae_weight == 0);
  CHECK(d.attn_weight == 1.0);
  auto read = [](const std::string& json) { return models::read_compression(nn::Config::parse(json), 16); };
  CompressionOptions o = read(R"({"compress_fn": "most_used", "compress_rate": 4, "compress_ae_loss": 0.5})");
  CHECK(o.fn == "most_used");
  CHECK(o.rate == 4);
  CHECK(o.ae_weight == 0.5);
  CHECK_THROWS_WITH_AS(read(R"({"compress_fn": "avg"})"),
                       doctest::Contains("compress_fn: expected one of max, mean, conv, dilated_conv, most_used, "
                                         "got 'avg'"),
                       Error);
  CHECK_THROWS_WITH_AS(read(R"({"compress_rate": 0})"), doctest::Contains("compress_rate: expected c >= 1, got 0"),
                       Error);
  CHECK_THROWS_WITH_AS(read(R"({"compress_ae_loss": -1})"), doctest::Contains("compress_ae_loss"), Error);
  CHECK_THROWS_WITH_AS(read(R"({"compress_attn_loss": -0.5})"), doctest::Contains("compress_attn_loss"), Error);
  Generator gen(1);
  CHECK_THROWS_WITH_AS(Compressor(CompressionOptions{.fn = "conv", .rate = -2, .dim = 4}, gen),
                       doctest::Contains("compress_rate"), Error);
}
