// Proofs of the feed-forward variants (nn/ffn/) and ScaleNorm (nn/norm/scalenorm).
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/zoo.h"
#include "nn/ffn/activations.h"
#include "nn/ffn/kv_memory.h"
#include "nn/ffn/mlp.h"
#include "nn/norm/scalenorm.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
std::shared_ptr<nn::MLP> make_glu(int64_t C, const std::string& gate, bool bias, uint64_t seed = 1) {
  Generator gen(seed);
  nn::Config c = nn::Config::parse(cat_str(R"({"ffn_glu": ")", gate, R"(", "ffn_mult": 4})"), "proof");
  auto m = zoo::registry().make_ffn("glu_variants", nn::ModelDims{.dim = C, .depth = 1, .bias = bias}, c, gen);
  return std::dynamic_pointer_cast<nn::MLP>(m);
}

double norm_of(const Tensor& row) {
  double s = 0;
  for (double v : row.to_vector<double>()) s += v * v;
  return std::sqrt(s);
}
}  // namespace

// Shazeer 2020: FFN_act(x) = (act(xW) ⊙ xV) W2 with d_ff' = 2 d_ff / 3 keeps the parameters.
TZ_PROOF(glu_variants,
         "GLU at d_ff' = floor(2 d_ff / 3) has the ReLU FFN's parameter count, identity gate is bilinear") {
  Generator gen(11);
  // 1. Parameter count (no biases, as in the paper). C = 12: d_ff = 48, d_ff' = 32, exact.
  for (const char* gate : {"glu", "bilinear", "reglu", "geglu", "swiglu"}) {
    nn::MLP relu_ffn(nn::MLPOptions{.dim = 12, .hidden = 48, .activation = "relu", .bias = false}, gen);
    auto glu = make_glu(12, gate, false);
    CHECK(glu->options.gated);
    CHECK(glu->options.hidden == 32);
    CHECK(glu->num_parameters() == relu_ffn.num_parameters());  // 3*12*32 == 2*12*48 == 1152
  }
  // C = 16: 2 d_ff / 3 = 42.67 is floored to 42, so GLU has 3*16*42 = 2016 vs 2*16*64 = 2048:
  // the floor costs fewer than 3C parameters.
  {
    nn::MLP relu_ffn(nn::MLPOptions{.dim = 16, .hidden = 64, .activation = "relu", .bias = false}, gen);
    int64_t diff = relu_ffn.num_parameters() - make_glu(16, "swiglu", false)->num_parameters();
    MESSAGE("C = 16: ReLU FFN ", relu_ffn.num_parameters(), " vs GLU ", relu_ffn.num_parameters() - diff,
            " parameters");
    CHECK(diff == 32);
    CHECK(diff < 3 * 16);
  }
  // With biases (our model default), GLU has 2 d_ff' + C biases against d_ff + C: d_ff/3 more.
  {
    nn::MLP relu_ffn(nn::MLPOptions{.dim = 12, .hidden = 48, .activation = "relu", .bias = true}, gen);
    CHECK(make_glu(12, "swiglu", true)->num_parameters() - relu_ffn.num_parameters() == 48 / 3);
  }

  // 2. Each gate is its formula, computed in plain loops.
  const int64_t C = 6, N = 4;
  Tensor x = randn({N, C}, gen, DType::f64);
  for (const char* gate : {"glu", "bilinear", "reglu", "geglu", "swiglu"}) {
    auto m = make_glu(C, gate, true, 3);
    m->to(DType::f64);
    Tensor y = m->forward(x);
    const int64_t F = m->options.hidden;
    double worst = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < C; ++o) {
        double acc = m->proj->bias.at({o});
        for (int64_t f = 0; f < F; ++f) {
          double a = m->gate->bias.at({f}), v = m->up->bias.at({f});
          for (int64_t c = 0; c < C; ++c) {
            a += x.at({n, c}) * m->gate->weight.at({f, c});
            v += x.at({n, c}) * m->up->weight.at({f, c});
          }
          std::string g = gate;
          double act = g == "glu"        ? 1 / (1 + std::exp(-a))
                       : g == "bilinear" ? a
                       : g == "reglu"    ? std::max(a, 0.0)
                       : g == "geglu"    ? 0.5 * a * (1 + std::erf(a / std::sqrt(2.0)))
                                         : a / (1 + std::exp(-a));
          acc += act * v * m->proj->weight.at({o, f});
        }
        worst = std::max(worst, std::abs(acc - y.at({n, o})));
      }
    CHECK_MESSAGE(worst < 1e-12, gate, ": differs from the loop reference by ", worst);
    TZ_PROOF_NUMBER("vs loop reference", worst);
  }

  // 3. Identity gate without biases is a bilinear (quadratic) form in x:
  //    y(a x) = a^2 y(x)  and the parallelogram law  y(x + z) + y(x - z) = 2 y(x) + 2 y(z).
  auto bil = make_glu(C, "bilinear", false, 4);
  bil->to(DType::f64);
  Tensor z = randn({N, C}, gen, DType::f64);
  CHECK(testing::rel_rms(bil->forward(x * 2.5), bil->forward(x) * 6.25) < 1e-12);
  CHECK(testing::rel_rms(bil->forward(x + z) + bil->forward(x - z), 2.0 * bil->forward(x) + 2.0 * bil->forward(z)) <
        1e-12);
  // ...which no other gate is (the check is not vacuous).
  auto swi = make_glu(C, "swiglu", false, 4);
  swi->to(DType::f64);
  CHECK(testing::rel_rms(swi->forward(x * 2.5), swi->forward(x) * 6.25) > 1e-2);

  // 4. A bad gate name is an error naming the key.
  CHECK_THROWS_WITH_AS(make_glu(C, "swish", false), doctest::Contains("ffn_glu"), Error);
}

// Primer (arXiv:2109.08668): act(x) = max(0, x)^2, act'(x) = 2 max(0, x).
TZ_PROOF(relu_squared, "value max(0,x)^2 and gradient 2 max(0,x) match finite differences, also near 0") {
  std::vector<double> xs = {-3, -1, -1e-3, -1e-7, -1e-12, 0, 1e-12, 1e-7, 1e-3, 0.5, 1, 3};
  Tensor x = from_vector(xs, {int64_t(xs.size())}).requires_grad_();
  Tensor y = nn::activate("relu_squared", x);
  sum(y).backward();
  Tensor g = x.grad();
  const double h = 1e-6;
  double worst_fd = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    double r = std::max(xs[i], 0.0);
    CHECK(y.at({int64_t(i)}) == r * r);
    CHECK(g.at({int64_t(i)}) == 2 * r);
    double up = std::max(xs[i] + h, 0.0), down = std::max(xs[i] - h, 0.0);
    double fd = (up * up - down * down) / (2 * h);
    worst_fd = std::max(worst_fd, std::abs(fd - 2 * r));
  }
  // Central differences are exact for a quadratic away from 0; within h of 0 the kink of the
  // second derivative leaves an error of at most h / 2.
  MESSAGE("worst |finite difference - 2 max(0, x)| = ", worst_fd, " (h = ", h, ")");
  TZ_PROOF_NUMBER("finite difference error", worst_fd);
  CHECK(worst_fd <= h / 2 + 1e-12);
  // gradcheck over points straddling 0.
  Tensor near0 = from_vector(std::vector<double>{-2e-3, -5e-4, 5e-4, 2e-3, 0.3, -0.3}, {6}).requires_grad_();
  auto r = gradcheck([](const std::vector<Tensor>& in) { return nn::activate("relu_squared", in[0]); }, {near0});
  CHECK_MESSAGE(r.ok, r.report);
  // The id switches the model's FFN to it.
  Generator gen(1);
  auto lm = zoo::make_lm(
      R"({"dim": 8, "depth": 1, "heads": 2, "context": 4, "vocab": 10, "activation": "relu_squared"})", gen);
  CHECK(lm->layers->at<models::Block>(0)->ffn->describe().find("relu_squared") != std::string::npos);
}

// Nguyen & Salazar 2019 (arXiv:1910.05895): ScaleNorm(x) = g x / max(‖x‖, eps).
TZ_PROOF(scalenorm, "‖output‖ == g for any non-zero x, invariant to rescaling x") {
  const int64_t C = 8;
  nn::ScaleNorm sn(nn::ScaleNormOptions{.dim = C, .eps = 1e-5});
  CHECK(sn.gain.item() == doctest::Approx(std::sqrt(8.0)).epsilon(1e-7));  // init sqrt(C)
  sn.to(DType::f64);
  core::copy_(sn.gain, full({1}, 3.7, DType::f64));
  Generator gen(12);
  Tensor x = randn({5, C}, gen, DType::f64);
  for (double scale : {1e-4, 0.3, 1.0, 42.0, 1e6}) {
    Tensor y = sn.forward(x * scale);
    for (int64_t r = 0; r < 5; ++r) CHECK(norm_of(y.select(0, r)) == doctest::Approx(3.7).epsilon(1e-12));
    CHECK(testing::rel_rms(y, sn.forward(x)) < 1e-12);  // scale invariance
  }
  // Below eps the norm is floored: y = g x / eps, so ‖y‖ = g ‖x‖ / eps < g, and x = 0 gives 0
  // with a finite gradient g / eps (no 0/0 from sqrt at 0).
  Tensor tiny = x.select(0, 0).unsqueeze(0);
  tiny = tiny * (1e-7 / norm_of(tiny));
  CHECK(norm_of(sn.forward(tiny)) == doctest::Approx(3.7 * 1e-7 / 1e-5).epsilon(1e-9));
  Tensor zero = zeros({1, C}, DType::f64).requires_grad_();
  sum(sn.forward(zero)).backward();
  CHECK(testing::all_finite(zero.grad()));
  CHECK(zero.grad().at({0, 0}) == doctest::Approx(3.7 / 1e-5));
  Tensor xi = randn({3, C}, gen, DType::f64).requires_grad_();
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return sn.forward(in[0]); }, {xi, sn.gain});
  CHECK_MESSAGE(r.ok, r.report);
  TZ_PROOF_NUMBER("gradcheck error", r.max_abs_error);
}

// Geva et al. 2021 (arXiv:2012.14913): FFN(x) = sum_i f(x · k_i) v_i (+ b2).
TZ_PROOF(ffn_kv_memory_probe, "per-key contributions sum to the FFN output, v_i E^T is the logit lens of the FFN") {
  Generator gen(13);
  const int64_t C = 6, F = 12, N = 7, V = 10;
  nn::MLP mlp(nn::MLPOptions{.dim = C, .hidden = F, .activation = "relu"}, gen);
  mlp.to(DType::f64);
  for (auto& [name, t] : mlp.named_parameters()) core::copy_(t, randn(t.shape(), gen, DType::f64, 0.0, 0.5));
  Tensor x = randn({N, C}, gen, DType::f64);

  // 1. The hook records exactly the coefficients forward used, and they rebuild the output.
  nn::KeyRecorder rec(mlp);
  Tensor y = mlp.forward(x);
  Tensor m = rec.coefficients();
  CHECK(m.shape() == Shape{N, F});
  CHECK(testing::max_abs_diff(m, relu(linear(x, mlp.fc->weight, mlp.fc->bias))) == 0);
  Tensor parts = nn::key_contributions(mlp, x);  // [N, F, C]
  double exact = testing::max_abs_diff(sum(parts, {1}) + mlp.proj->bias, y);
  MESSAGE("max |sum_i m_i v_i + b2 - FFN(x)| = ", exact);
  TZ_PROOF_NUMBER("sum of key contributions vs FFN", exact);
  CHECK(exact < 1e-12);
  // Some keys are off (ReLU), so the sum really runs over a sparse set of memories.
  int64_t off = 0;
  for (double v : m.to_vector<double>()) off += v == 0;
  CHECK(off > 0);

  // 2. Logit lens: (FFN(x) - b2) E^T == sum_i m_i (v_i E^T) for an output embedding E.
  Tensor E = randn({V, C}, gen, DType::f64);
  Tensor P = nn::value_vocab_projection(mlp, E);  // [F, V]
  CHECK(P.shape() == Shape{F, V});
  CHECK(testing::max_abs_diff(linear(y - mlp.proj->bias, E), matmul(m, P)) < 1e-12);
  // One key alone: its contribution read through E is exactly m_i times row i of P.
  for (int64_t i : {int64_t(0), F - 1})
    for (int64_t n = 0; n < N; ++n)
      CHECK(testing::max_abs_diff(linear(parts.select(0, n).select(0, i), E), P.select(0, i) * m.at({n, i})) < 1e-12);

  // The gated FFN reads the same way with m = act(x W) ⊙ x V; it has no single key matrix.
  {
    nn::MLP glu(nn::MLPOptions{.dim = C, .hidden = F, .activation = "silu", .gated = true}, gen);
    glu.to(DType::f64);
    glu.eval();
    double gap = testing::max_abs_diff(sum(nn::key_contributions(glu, x), {1}) + glu.proj->bias, glu.forward(x));
    CHECK(gap < 1e-12);
    CHECK_THROWS_WITH_AS(nn::memory_keys(glu), doctest::Contains("gated"), Error);
  }

  // 3. Top-activating positions and strongest keys are ranked correctly.
  Tensor toy = from_vector(std::vector<double>{0.1, 5, 0.0, 3, 2, 1, 0.7, 9, 4}, {3, 3});
  auto hits = nn::top_activations(toy, {0, 1}, 2);
  CHECK(hits[0][0].position == 1);
  CHECK(hits[0][0].value == 3);
  CHECK(hits[0][1].position == 2);
  CHECK(hits[1][0].position == 2);
  CHECK(nn::strongest_keys(toy, 2) == std::vector<int64_t>{1, 2});

  // 4. On the zoo LM: the recorder on a block's FFN sees every position of the batch, and
  //    the value projection through the tied embedding is the logit lens of that FFN.
  auto lm = zoo::make_lm(R"({"dim": 8, "depth": 2, "heads": 2, "context": 6, "vocab": 11, "activation": "relu"})", gen);
  auto block_ffn = std::dynamic_pointer_cast<nn::MLP>(lm->layers->at<models::Block>(1)->ffn);
  REQUIRE(block_ffn);
  {
    nn::KeyRecorder r2(*block_ffn);
    NoGradGuard no_grad;
    lm->forward(randint(0, 11, {3, 6}, gen));
    CHECK(r2.coefficients().shape() == Shape{18, 32});
  }
  CHECK(!block_ffn->on_keys);  // the recorder removed its hook
}

namespace {
// Every activation of the registry in plain numbers, for the value check; NaN for a name
// without a formula here, so that a new entry fails until it gets one.
double activation_ref(const std::string& name, double x, double prelu_a, double beta) {
  const double l = 1.0507009873554804934193349852946, al = 1.6732632423543772848170429916717;
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  auto softplus = [](double v) { return v > 30 ? v : std::log1p(std::exp(v)); };
  if (name == "relu") return std::max(x, 0.0);
  if (name == "leaky_relu") return x > 0 ? x : 0.01 * x;
  if (name == "prelu") return x > 0 ? x : prelu_a * x;
  if (name == "elu") return x > 0 ? x : std::expm1(x);
  if (name == "selu") return l * (x > 0 ? x : al * std::expm1(x));
  if (name == "gelu") return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  if (name == "gelu_tanh") return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  if (name == "silu") return x * sig(x);
  if (name == "swish") return x * sig(beta * x);
  if (name == "mish") return x * std::tanh(softplus(x));
  if (name == "softplus") return softplus(x);
  if (name == "sigmoid") return sig(x);
  if (name == "tanh") return std::tanh(x);
  if (name == "relu_squared") return std::max(x, 0.0) * std::max(x, 0.0);
  if (name == "identity") return x;
  return NAN;
}
}  // namespace

TZ_PROOF(activation_survey,
         "every entry matches its formula and passes gradcheck incl. kinks, GELU tanh within 1e-3 of erf") {
  const double beta = 1.7, pa = 0.25, h = 1e-6;
  Tensor a = full({1}, pa, DType::f64).requires_grad_();
  Generator gen(14);
  // Points away from the kink at 0 (|x| >= 0.05), plus large |x| where exp could overflow.
  std::vector<double> pts = {-40, -6, -2.5, -1, -0.3, -0.05, 0.05, 0.3, 1, 2.5, 6, 40};
  const nn::ActivationArgs args{.slope = a.detach(), .beta = beta};
  // The whole registry: the survey's 13, relu_squared and identity.
  CHECK(nn::activations().size() == 15);
  for (const nn::ActivationEntry& act : nn::activations()) {
    const char* name = act.name;
    auto f = [&](double x) { return act.fn(full({1}, x, DType::f64), args).item(); };
    // Values.
    Tensor x = from_vector(pts, {int64_t(pts.size())});
    Tensor y = act.fn(x, args);
    for (size_t i = 0; i < pts.size(); ++i)
      CHECK_MESSAGE(y.at({int64_t(i)}) == doctest::Approx(activation_ref(name, pts[i], pa, beta)).epsilon(1e-12), name,
                    " at ", pts[i]);
    CHECK_MESSAGE(testing::all_finite(y), name);
    // Gradients away from the kink: f64 finite differences (w.r.t. x, and the PReLU slope).
    std::vector<double> xs = randn({16}, gen, DType::f64, 0.0, 2.0).to_vector<double>();
    for (double& v : xs) v += v < 0 ? -0.1 : 0.1;
    Tensor xg = from_vector(xs, {16}).requires_grad_();
    // Only prelu reads the slope a: elsewhere its gradient is zero by design.
    auto r = gradcheck(
        [&](const std::vector<Tensor>& in) { return act.fn(in[0], nn::ActivationArgs{.slope = in[1], .beta = beta}); },
        {xg, a}, {.names = {"x", "prelu_a"}, .allow_vacuous = std::string(name) != "prelu"});
    CHECK_MESSAGE(r.ok, name, ": ", r.report);
    // At 0: the autograd gradient lies between the one-sided derivatives (equal to both where smooth).
    Tensor z = zeros({1}, DType::f64).requires_grad_();
    sum(act.fn(z, args)).backward();
    double g = z.grad().item(), left = (f(0) - f(-h)) / h, right = (f(h) - f(0)) / h;
    CHECK_MESSAGE(g >= std::min(left, right) - 1e-5, name, ": gradient ", g, " at 0, one-sided ", left, " / ", right);
    CHECK_MESSAGE(g <= std::max(left, right) + 1e-5, name, ": gradient ", g, " at 0, one-sided ", left, " / ", right);
  }
  // GELU's tanh approximation against the exact (erf) GELU over [-8, 8].
  Tensor grid = from_vector(std::vector<double>([] {
    std::vector<double> v;
    for (int i = -8000; i <= 8000; ++i) v.push_back(i / 1000.0);
    return v;
  }()));
  double gap = testing::max_abs_diff(nn::activate("gelu_tanh", grid), nn::activate("gelu", grid));
  MESSAGE("max |gelu_tanh - gelu| over [-8, 8] = ", gap);
  TZ_PROOF_NUMBER("max |gelu_tanh - gelu|", gap);
  CHECK(gap < 1e-3);
  CHECK(gap > 0);

  // The id builds an FFN with that entry and prelu's learned slope; unknown names name the key.
  Generator g2(3);
  auto build = [&](const std::string& json) {
    return zoo::registry().make_ffn("activation_survey", nn::ModelDims{.dim = 4, .depth = 1},
                                    nn::Config::parse(json, "proof"), g2);
  };
  auto prelu = std::dynamic_pointer_cast<nn::MLP>(build(R"({"survey_activation": "prelu"})"));
  REQUIRE(prelu);
  CHECK(prelu->state_dict().count("prelu_a"));
  CHECK(prelu->prelu_a.item() == 0.25);
  CHECK(!std::dynamic_pointer_cast<nn::MLP>(build("{}"))->prelu_a.defined());  // mish: no slope
  CHECK_THROWS_WITH_AS(build(R"({"survey_activation": "swishh"})"),
                       doctest::Contains("config key 'survey_activation': unknown activation 'swishh'; "
                                         "did you mean 'swish'?"),
                       Error);
}
