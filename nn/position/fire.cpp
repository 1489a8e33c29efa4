// FIRE functional relative positions (Li et al. 2023, arXiv:2310.04418); see fire.h.
#include "nn/position/fire.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/config.h"
#include "nn/position/common.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
constexpr double kEps = 1e-6;  // keeps the normaliser positive when c L = 0 (the paper's eps)
}

FirePositions::FirePositions(const FireOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.heads > 0, "fire: heads must be positive, got ", o.heads);
  TZ_CHECK(o.hidden > 0, "fire: 'fire_hidden' must be positive, got ", o.hidden);
  TZ_CHECK(o.c > 0 && std::isfinite(o.c), "fire: 'fire_c' must be positive, got ", o.c);
  TZ_CHECK(o.threshold >= 0 && std::isfinite(o.threshold), "fire: 'fire_threshold' must be >= 0, got ", o.threshold);
  c_raw = register_parameter("c", full({1}, o.c));
  L_scale = register_parameter("L_scale", full({1}, 1.0));
  // f_θ reads a scalar in [0, 1]. Initialised as the paper's code leaves it (PyTorch's
  // nn.Linear: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))): the first layer's kinks
  // -b/w then spread over the interval, so f_θ can bend anywhere in it from the start (with
  // biases near 0 every kink sits at 0 and f_θ starts linear).
  fc1 = register_module("fc1", std::make_shared<Linear>(LinearOptions{.in = 1, .out = o.hidden}, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(LinearOptions{.in = o.hidden, .out = o.heads}, gen));
  NoGradGuard no_grad;
  for (const auto& fc : {fc1, fc2}) {
    const double bound = 1.0 / std::sqrt(double(fc->weight.size(1)));
    core::copy_(fc->weight, rand(fc->weight.shape(), gen, DType::f32, -bound, bound));
    core::copy_(fc->bias, rand(fc->bias.shape(), gen, DType::f32, -bound, bound));
  }
}

double FirePositions::c_value() const { return std::abs(c_raw.to(DType::f64).item()); }

double FirePositions::L_value() const { return std::abs(L_scale.to(DType::f64).item() * options.threshold); }

Tensor FirePositions::normalised(int64_t q_start, int64_t T, int64_t k_start, int64_t S) const {
  TZ_CHECK(q_start >= 0 && k_start >= 0, "fire: positions must be >= 0, got queries at ", q_start, ", keys at ",
           k_start);
  const DType dt = c_raw.dtype();
  std::vector<double> dist(static_cast<size_t>(T * S)), pos(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) {
    pos[size_t(i)] = double(q_start + i);
    for (int64_t j = 0; j < S; ++j) dist[size_t(i * S + j)] = std::abs(double((q_start + i) - (k_start + j)));
  }
  Tensor c = abs(c_raw);                                                   // [1]
  Tensor L = abs(L_scale * options.threshold);                             // [1]
  Tensor num = log(c * from_vector(dist, {T, S}).to(dt) + 1.0);            // ψ(|i - j|)  [T, S]
  Tensor at = maximum(from_vector(pos, {T, 1}).to(dt), L.expand({T, 1}));  // max(i, L) [T, 1]
  Tensor den = log(c * at + 1.0) + kEps;                                   // ψ(max(L, i)) + ε
  return num / den;
}

Tensor FirePositions::bias(int64_t q_start, int64_t T, int64_t k_start, int64_t S) const {
  ++computations;
  Tensor x = normalised(q_start, T, k_start, S).unsqueeze(-1);  // [T, S, 1]
  Tensor b = fc2->forward(relu(fc1->forward(x)));               // [T, S, H]
  return b.permute({2, 0, 1});                                  // [H, T, S]
}

Tensor FirePositions::query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                       const MixerContext* ctx) const {
  TZ_CHECK(q.dim() == 4 && q.size(1) == options.heads && k.dim() == 4, "fire: needs q, k [B, ", options.heads,
           ", T, D], got q ", q.shape(), " k ", k.shape());
  const int64_t T = q.size(2), S = k.size(2);
  Tensor b = carry_once(ctx, cat_str("fire ", q_start, " ", T, " ", k_start, " ", S, " ", dtype_name(q.dtype())),
                        [&] { return bias(q_start, T, k_start, S); });
  return (b.dtype() == q.dtype() ? b : b.to(q.dtype())).unsqueeze(0);
}

std::string FirePositions::describe() const {
  return cat_str("FirePositions(heads=", options.heads, ", hidden=", options.hidden, ", L0=", options.threshold, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
const nn::Key<int64_t> kFireHidden{"fire_hidden", 32, "hidden width of the MLP f_θ"};
const nn::Key<double> kFireC{"fire_c", 0.1, "initial c of ψ(x) = log(c x + 1) (learned)"};
const nn::Key<double> kFireThreshold{"fire_threshold", 512.0,
                                     "initial threshold L: queries before it share the normaliser ψ(L) (learned)"};
}  // namespace

void register_fire(nn::Registry& r) {
  r.add({.id = "fire",
         .summary = "MLP of the log distance normalised by the query position: b = f(ψ(i-j)/ψ(max(L,i))), per head",
         .keys = {kFireHidden, kFireC, kFireThreshold},
         .test_config = R"({"pos": "fire", "fire_threshold": 16})",
         .example = R"({"pos": "fire", "fire_hidden": 32, "fire_threshold": 512})",
         .position = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::FirePositions>(nn::FireOptions{.heads = d.heads,
                                                                      .hidden = c.get(kFireHidden),
                                                                      .c = c.get(kFireC),
                                                                      .threshold = c.get(kFireThreshold)},
                                                      gen);
         }});
}

}  // namespace tz::zoo
