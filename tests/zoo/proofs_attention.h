// Helpers of the attention proofs (proofs_attention.cpp, proofs_attention_scores.cpp): a
// small f64 attention layer from config keys, and the checks every option repeats (decoding
// equals the forward, causality, the raw logits).
#pragma once

#include <cmath>
#include <functional>
#include <utility>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/attention/attention.h"
#include "tests/test_util.h"

namespace tz::attn_proofs {
constexpr int64_t kB = 2, kC = 8;

// An f64 attention layer (dim 8, `heads` heads, context 16) from attention config keys.
inline std::shared_ptr<nn::Attention> make_attn(const std::string& json, uint64_t seed, int64_t heads = 2,
                                                bool bias = true) {
  nn::Config c = nn::Config::parse(json);
  nn::ModelDims d{.dim = kC, .heads = heads, .context = 16, .depth = 2, .bias = bias};
  Generator gen(seed);
  auto a = std::make_shared<nn::Attention>(nn::attention_options(d, c), gen);
  a->to(DType::f64);
  return a;
}

inline Tensor input(int64_t T, uint64_t seed = 100) {
  Generator gen(seed);
  return randn({kB, T, kC}, gen, DType::f64);
}

// Step-by-step decoding vs the parallel forward: the max difference.
inline double decode_diff(nn::Attention& a, const Tensor& x) {
  NoGradGuard no_grad;
  Tensor full = a.forward(x, {});
  auto state = a.make_state(x.size(0), x.size(1), DType::f64);
  double worst = 0;
  for (int64_t t = 0; t < x.size(1); ++t)
    worst =
        std::max(worst, testing::max_abs_diff(a.step(x.narrow(1, t, 1), *state, {.start = t}), full.narrow(1, t, 1)));
  return worst;
}

// Changing inputs after t: how far outputs 0..t move (must be 0) and later ones (must not).
inline std::pair<double, double> causal_diffs(const std::function<Tensor(const Tensor&)>& f, const Tensor& x,
                                              int64_t t) {
  NoGradGuard no_grad;
  Tensor x2 = x.clone();
  Generator gen(77);
  core::copy_(x2.narrow(1, t + 1, x.size(1) - t - 1),
              randn({x.size(0), x.size(1) - t - 1, x.size(2)}, gen, DType::f64));
  Tensor y1 = f(x), y2 = f(x2);
  return {testing::max_abs_diff(y1.narrow(1, 0, t + 1), y2.narrow(1, 0, t + 1)),
          testing::max_abs_diff(y1.narrow(1, t + 1, x.size(1) - t - 1), y2.narrow(1, t + 1, x.size(1) - t - 1))};
}

inline void check_causal(nn::Attention& a, const Tensor& x, int64_t t = 3) {
  auto [before, after] = causal_diffs([&](const Tensor& in) { return a.forward(in, {}); }, x, t);
  CHECK(before < 1e-12);
  CHECK(after > 1e-6);
}

// Raw logits q k^T / sqrt(D) [B, H, T, T] of a plain-layout layer.
inline Tensor raw_logits(nn::Attention& a, const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), H = a.layout.H, D = a.layout.D;
  Tensor p = a.qkv->forward(x).view({B, T, 3, H, D});
  Tensor q = p.select(2, 0).permute({0, 2, 1, 3}), k = p.select(2, 1).permute({0, 2, 1, 3});
  return matmul(q, k.transpose(-1, -2)) / std::sqrt(double(D));
}

inline void randomise(const Tensor& t, uint64_t seed, double scale = 0.5) {
  NoGradGuard no_grad;
  Generator gen(seed);
  core::copy_(t, randn(t.shape(), gen, DType::f64, 0.0, scale));
}
}  // namespace tz::attn_proofs
