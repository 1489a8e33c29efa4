// Transformer-XL relative positional encoding. "Transformer-XL: Attentive Language Models
// Beyond a Fixed-Length Context", Dai et al. 2019, arXiv:1901.02860 (§3.3).
//
// Shapes: B batch, H heads, T queries (positions q_start..), S keys (positions k_start..),
// C model width, D = C / H head size, M = T + S - 1 distinct distances.
// Score of query i and key j, per head, with R_d the sinusoid of distance d = i - j (width C):
//   A_ij = q_i·k_j  (a)  + q_i·W_{k,R} R_{i-j}  (b)  + u·k_j  (c)  + v·W_{k,R} R_{i-j}  (d)
// q_i = W_q x_i and k_j = W_{k,E} x_j are the attention's own projections; (a) is its usual
// content score, so this scheme returns (b) + (c) + (d), scaled by 1/sqrt(D) like (a).
// u, v [H, D] are learned and shared by all layers (as in the paper's code); W_{k,R} [C, C]
// belongs to each layer (ctx->layer picks it). No position vector enters the embeddings.
// (b) + (d) = (q_i + v)·r_{i-j} with r = W_{k,R} R, and (a) + (c) = (q_i + u)·k_j. Three forms:
//   score_terms  the attention's path: q + u replaces q, and the relative keys of the fused
//                kernel (sdpa.h) take a = q + v and the M rows r in ascending distance; each
//                tile gathers its (b) + (d) from a block of dots a·r: memory linear in T,
//                k, v of G heads read in place (no copy per query head);
//   bias_fast    the dense [B, H, T, S] term: X = (q + v) r^T for the M distances once,
//                [B, H, T, M], then the relative shift moves row i left by its offset so
//                that X'_ij = X[i, d(i, j)] (pad, reshape, slice: no copy loops);
//   bias_ref     builds r_{i-j} for every pair (i, j) explicitly, O(T S C), in the plain
//                order of the equation (the f64 reference of the other two).
// Deviation: no segment recurrence (memory of the previous segment) here: that is the
// model's business; this id is only the relative scheme, with keys at any offset.
#pragma once

#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

class TXLRelativePositions : public PositionScheme {
 public:
  TXLRelativePositions(int64_t dim, int64_t heads, int64_t depth, double base, Generator& gen);
  // Within a model ctx->layer picks W_{k,R}; without a context, layer 0's.
  Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                          const MixerContext* ctx = nullptr) const override;
  bool biases_with_queries() const override { return true; }
  // (q + u) replaces q; rel_q = q + v, rel_k = r [H, T + S - 1, D] (rows by ascending distance).
  bool score_terms(Tensor& q, int64_t S, int64_t q_start, int64_t k_start, SdpaSpec& spec,
                   const MixerContext* ctx = nullptr) const override;
  std::string describe() const override;
  // (b) + (c) + (d), divided by sqrt(D): [B, H, T, S]. `layer` picks W_{k,R}.
  Tensor bias_fast(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start, int64_t layer) const;
  Tensor bias_ref(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start, int64_t layer) const;

  int64_t dim, heads;
  double base;
  Tensor u, v;                      // [H, D]
  std::shared_ptr<ModuleList> w_r;  // per layer: Linear C -> C, no bias

 private:
  Tensor project_r(const Tensor& R, int64_t layer) const;  // [N, C] sinusoids -> [H, N, D]
};

// The relative shift: X [..., T, T + S - 1] whose column c holds distance (T - 1 - c) + o
// → Y [..., T, S] with Y_ij = X[i, T - 1 - i + j] (distance o + i - j).
Tensor txl_rel_shift(const Tensor& x, int64_t S);

}  // namespace tz::nn
