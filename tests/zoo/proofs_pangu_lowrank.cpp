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
