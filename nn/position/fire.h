// FIRE. "Functional Interpolation for Relative Positions Improves Long Context
// Transformers", Li et al. 2023, arXiv:2310.04418 (ICLR 2024), §3 and the implementation
// in its appendix.
//
// Shapes: H heads, T queries (positions q_start..), S keys (positions k_start..), F hidden
// width of the MLP (32).
// Each head h adds to the pre-softmax score of query i and key j (positions, j <= i):
//   b_h(i, j) = f_θ( ψ(i - j) / ψ(max(L, i)) )_h,     ψ(x) = log(c x + 1)
//   f_θ(x)    = W2 relu(W1 x + b1) + b2                W1 [F, 1], W2 [H, F]: one output per head
// The input is the distance normalised by the query's own position ("progressive
// interpolation"): for j <= i it lies in [0, 1] whatever the length, so a query beyond the
// training length feeds f_θ values it was trained on. L is a threshold below which the
// normaliser stays ψ(L): short contexts see plain (un-normalised) log distances.
// As in the paper's code: c and L enter through |·| (c = |ĉ|, L = |λ L0| with λ learned from 1
// and L0 the initial threshold), positions count from 0, and ε = 1e-6 is added to the
// normaliser (ψ(max(L, 0)) = 0 when L = 0). c, L, θ are learned.
// The term depends on the query position i, not only on i - j, so it is a dense [H, T, S]
// term (query_score_bias: the attention takes the composite path with it). One module
// serves all layers, as T5's bias does (our choice: per-layer copies would multiply the
// parameters by the depth), computed once per forward (carry_once).
// Keys after the query (j > i, hidden by the causal mask) get the input |i - j| / ψ(max(L, i))
// too, which may exceed 1: FIRE is defined for causal attention.
#pragma once

#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

struct FireOptions {
  int64_t heads = 0;         // H
  int64_t hidden = 32;       // F
  double c = 0.1;            // initial c
  double threshold = 512.0;  // L0, the initial L
};

class FirePositions : public PositionScheme {
 public:
  FirePositions(const FireOptions& options, Generator& gen);
  // b [1, H, T, S] for queries at q_start.. over keys at k_start.. (q, k only give T, S and
  // the dtype); within a model computed once per forward for all layers.
  Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                          const MixerContext* ctx = nullptr) const override;
  bool biases_with_queries() const override { return true; }
  std::string describe() const override;
  // The normalised input ψ(|i - j|) / (ψ(max(L, i)) + ε) [T, S], differentiable in c and L.
  Tensor normalised(int64_t q_start, int64_t T, int64_t k_start, int64_t S) const;
  // b [H, T, S] without sharing.
  Tensor bias(int64_t q_start, int64_t T, int64_t k_start, int64_t S) const;
  double c_value() const;  // |ĉ|
  double L_value() const;  // |λ L0|

  FireOptions options;
  Tensor c_raw, L_scale;  // ĉ, λ: [1]
  std::shared_ptr<Linear> fc1, fc2;
  mutable int64_t computations = 0;  // how often b was computed (the proof counts it)
};

}  // namespace tz::nn
