// Proofs of PanGu-π's series activation and augmented shortcut (nn/ffn/pangu_pi.h) and of
// the Low-Rank Transformer's factorised linear layers (models/low_rank.h): pangu_pi,
// low_rank_transformer.
#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "core/text.h"
#include "models/zoo.h"
#include "nn/ffn/pangu_pi.h"
#include "nn/layers.h"
#include "nn/low_rank.h"
#include "optim/adam.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
const char* kBase = R"("vocab": 16, "heads": 2, "context": 24)";

std::unique_ptr<models::LM> lm(const std::string& extra, uint64_t seed = 1) {
  Generator gen(seed);
  return zoo::make_lm(std::string("{") + kBase + ", " + extra + "}", gen);
}

Tensor ids_of(uint64_t seed, int64_t B = 4, int64_t T = 16) {
  Generator g(seed);
  return randint(0, 16, {B, T}, g);
}

// Copies every parameter of `from` into the parameter of the same name in `to`.
void copy_shared(const nn::Module& from, nn::Module& to) {
  NoGradGuard ng;
  const nn::NamedTensors dst = to.named_parameters();
  for (const auto& [name, t] : from.named_parameters())
    for (const auto& [n2, t2] : dst)
      if (n2 == name) core::copy_(t2, t);
}

// Token diversity of features h [B, T, C]: ‖h − mean_t h‖_F / ‖h‖_F (0 = every token the same).
double diversity(const Tensor& h) {
  const int64_t B = h.size(0), T = h.size(1), C = h.size(2);
  const std::vector<double> v = h.to(DType::f64).contiguous().to_vector<double>();
  double dev = 0, all = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double mean = 0;
      for (int64_t t = 0; t < T; ++t) mean += v[size_t((b * T + t) * C + c)] / double(T);
      for (int64_t t = 0; t < T; ++t) {
        const double x = v[size_t((b * T + t) * C + c)];
        dev += (x - mean) * (x - mean);
        all += x * x;
      }
    }
  return std::sqrt(dev / all);
}
}  // namespace

TZ_PROOF(pangu_pi, "series n=1, a=1, b=0 is the base FFN, zero shortcuts give the plain residual") {
  // The series against its formula in plain numbers: n = 3, tanh, a and b arbitrary.
  {
    Generator g(7);
    Tensor h = randn({5, 6}, g, DType::f64);
    Tensor a = tensor({0.7, -0.3, 1.2}, DType::f64), b = tensor({-0.4, 0.1, 0.9}, DType::f64);
    Tensor s = nn::series_activation(nn::find_activation("tanh"), h, a, b);
    const std::vector<double> hv = h.to_vector<double>(), sv = s.to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < hv.size(); ++i) {
      const double want = 0.7 * std::tanh(hv[i] - 0.4) - 0.3 * std::tanh(hv[i] + 0.1) + 1.2 * std::tanh(hv[i] + 0.9);
      worst = std::max(worst, std::abs(sv[i] - want));
    }
    MESSAGE("series n = 3 vs Σ a_i tanh(x + b_i): ", worst);
    CHECK(worst < 1e-12);
  }
  // n = 1, a = 1, b = 0 (its initial values): the FFN is nn::MLP with the same weights, bit for bit.
  double worst_ffn = 0;
  for (const char* act : {"gelu", "relu", "silu", "tanh"}) {
    nn::MLPOptions o{.dim = 8, .hidden = 24, .activation = act};
    Generator g1(3), g2(4), gx(5);
    nn::SeriesMLP series(o, 1, g1);
    nn::MLP base(o, g2);
    copy_shared(series, base);  // fc, proj
    CHECK(series.series_a.item() == 1.0);
    CHECK(series.series_b.item() == 0.0);
    Tensor x = randn({2, 5, 8}, gx);
    const double d = testing::max_abs_diff(series.forward(x), base.forward(x));
    MESSAGE("series n = 1 vs MLP, ", std::string(act), ": ", d);
    CHECK(d == 0.0);
    worst_ffn = std::max(worst_ffn, d);
  }
  // The augmented shortcut with Θ = 0 (every D_i zero) is the pre-norm residual, bit for bit;
  // with its initial Θ it is not.
  const std::string common = R"("dim": 16, "depth": 3, "ffn": "pangu_pi", )";
  auto plain = lm(common + R"("residual": "add")");
  auto aug = lm(common + R"("residual": "augmented", "aug_shortcuts": 2)");
  copy_shared(*plain, *aug);
  int64_t shortcut_params = 0;
  const Tensor ids = ids_of(3);
  NoGradGuard ng;
  plain->eval(), aug->eval();
  const double live = testing::max_abs_diff(aug->forward(ids), plain->forward(ids));
  for (const auto& [name, t] : aug->named_parameters())
    if (name.find("aug") != std::string::npos) {
      shortcut_params += t.numel();
      if (name.find("down") != std::string::npos) core::fill_(t, 0.0);
    }
  const double zero = testing::max_abs_diff(aug->forward(ids), plain->forward(ids));
  MESSAGE("augmented vs add: initial Θ ", live, ", Θ = 0 ", zero, " (", shortcut_params, " shortcut parameters)");
  // depth 3, 2 shortcuts on each mixer sublayer, D [16, 4] and U [4, 16]: none on the FFNs.
  CHECK(shortcut_params == 3 * 2 * (16 * 4 + 4 * 16));
  CHECK(live > 1e-4);
  CHECK(zero == 0.0);
  TZ_PROOF_NUMBER("|augmented(Θ=0) - add| + |series(n=1) - MLP|", zero + worst_ffn);

  // The paper's motivation, measured at init: token diversity of the last block's stream
  // (‖h − mean_t h‖ / ‖h‖) of a 24-block attention-only stack, with and without shortcuts.
  double div[2];
  for (int k = 0; k < 2; ++k) {
    auto m = lm(std::string(R"("dim": 32, "depth": 24, "final_norm": "none", "init": "xavier", "layout": ")") +
                std::string(24, 's') + R"(", "residual": )" + (k ? R"("augmented")" : R"("add")"));
    m->eval();
    Tensor stream;
    m->feature_tap = [&](const Tensor& x) { stream = x; };
    m->forward(ids);
    div[k] = diversity(stream);
  }
  MESSAGE("token diversity after 24 attention blocks at init: add ", div[0], ", augmented ", div[1]);
  CHECK(div[1] > div[0]);
}

TZ_PROOF(low_rank_transformer,
         "rank min(in, out) fits any W, rank r keeps the r leading singular values, "
         "the parameter count is r (in + out) per layer") {
  // W [8, 6] with singular values 5, 4, 3, 2, 1, 0.5: W = Σ_k s_k p_k q_k^T, p and q
  // orthonormal (Gram–Schmidt of random vectors). By Eckart–Young the best rank-r fit leaves
  // ‖W − V U‖²_F = Σ_{k>r} s_k².
  const int64_t out = 8, in = 6;
  const std::vector<double> sv = {5, 4, 3, 2, 1, 0.5};
  auto orthonormal = [](int64_t n, int64_t k, uint64_t seed) {
    Generator g(seed);
    std::vector<double> v = randn({k, n}, g, DType::f64).to_vector<double>();
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < i; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < n; ++c) dot += v[size_t(i * n + c)] * v[size_t(j * n + c)];
        for (int64_t c = 0; c < n; ++c) v[size_t(i * n + c)] -= dot * v[size_t(j * n + c)];
      }
      double norm = 0;
      for (int64_t c = 0; c < n; ++c) norm += v[size_t(i * n + c)] * v[size_t(i * n + c)];
      for (int64_t c = 0; c < n; ++c) v[size_t(i * n + c)] /= std::sqrt(norm);
    }
    return v;
  };
  const std::vector<double> p = orthonormal(out, in, 11), q = orthonormal(in, in, 12);
  std::vector<double> w(size_t(out * in), 0.0);
  for (int64_t k = 0; k < in; ++k)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        w[size_t(o * in + i)] += sv[size_t(k)] * p[size_t(k * out + o)] * q[size_t(k * in + i)];
  const Tensor target = from_vector(w, {out, in}).to(DType::f32).transpose(0, 1).contiguous();  // W^T [in, out]
  double energy = 0;
  for (double s : sv) energy += s * s;

  // Fit V U to W through the layer's own forward: x = I gives x U^T V^T = (V U)^T.
  auto fit = [&](int64_t rank) {
    Generator g(5);
    nn::LowRankLinears factored(rank);
    nn::Linear lin(nn::LinearOptions{.in = in, .out = out, .bias = false}, g);
    CHECK(nn::linear_rank(lin) == rank);
    CHECK(lin.num_parameters() == rank * (in + out));
    optim::Adam opt(lin.named_parameters(), {.lr = 0.02});
    const Tensor eye = from_vector(std::vector<double>(size_t(in * in), 0.0), {in, in}).to(DType::f32);
    {
      NoGradGuard ng;
      for (int64_t i = 0; i < in; ++i) core::fill_(eye.narrow(0, i, 1).narrow(1, i, 1), 1.0);
    }
    const int steps = 3000;
    for (int s = 0; s < steps; ++s) {
      opt.set_lr(0.02 * 0.5 * (1 + std::cos(M_PI * s / steps)));
      Tensor d = lin.forward(eye) - target;
      Tensor loss = sum(d * d);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    NoGradGuard ng;
    Tensor d = lin.forward(eye) - target;
    return sum(d * d).item();
  };
  const double full = fit(in);
  MESSAGE("rank 6 = min(8, 6): ‖W − VU‖² / ‖W‖² = ", full / energy);
  CHECK(full / energy < 1e-6);
  double worst_tail = 0;
  for (int64_t r : {2, 4}) {
    double tail = 0;
    for (size_t k = size_t(r); k < sv.size(); ++k) tail += sv[k] * sv[k];
    const double got = fit(r);
    MESSAGE("rank ", r, ": ‖W − VU‖² = ", got, ", Σ_{k>r} s_k² = ", tail);
    CHECK(got >= tail * (1 - 1e-4));  // no rank-r matrix does better (Eckart–Young)
    CHECK(got <= tail * (1 + 1e-3));  // and the fit reaches that optimum
    worst_tail = std::max(worst_tail, std::abs(got - tail) / tail);
  }

  // Parameter count: per block the attention's q|k|v [C → 3C] and output [C → C] and the
  // FFN's fc [C → 4C] and proj [4C → C] hold 12 C² dense weights and 16 r C factored ones.
  const int64_t C = 32, depth = 3, r = 4;
  const std::string d = cat_str(R"("dim": )", C, R"(, "depth": )", depth);
  auto dense = lm(d);
  auto low = lm(d + cat_str(R"(, "linear_rank": )", r));
  const int64_t saved = dense->num_parameters() - low->num_parameters();
  MESSAGE("dense ", dense->num_parameters(), " parameters, rank ", r, " ", low->num_parameters(), ": ", saved,
          " fewer, formula depth (12 C² − 16 r C) = ", depth * (12 * C * C - 16 * r * C));
  CHECK(saved == depth * (12 * C * C - 16 * r * C));
  // The factored model still runs and is finite.
  NoGradGuard ng;
  low->eval();
  const Tensor logits = low->forward(ids_of(2));
  CHECK(std::isfinite(sum(logits).item()));
  TZ_PROOF_NUMBER("rank-min fit ‖W − VU‖² / ‖W‖²", full / energy);
}
