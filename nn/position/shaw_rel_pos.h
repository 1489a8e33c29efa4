// Shaw relative position representations. "Self-Attention with Relative Position
// Representations", Shaw, Uszkoreit & Vaswani 2018, arXiv:1803.02155, §3 eq. (3)-(5).
//
// Shapes: N layers, B batch, H heads, T queries (positions q_start..), S keys (positions
// k_start..), D head size, K clipping distance, R = 2K + 1 learned vectors per table,
// M = T + S - 1 distances.
// For query i and key j (positions), with r = clip(j - i, -K, K):
//   e_ij = q_i · (k_j + a^K_r) / sqrt(D)
//   z_i  = Σ_j α_ij (v_j + a^V_r),       α_i = softmax_j(e_ij)
// a^K, a^V [R, D] per layer, shared by the heads of the layer (as the paper shares them
// across heads, §3.3). Distances beyond K share the last vector, so any length works with the same
// 2K + 1 vectors per table; a causal model uses r <= 0 only (K + 1 of them).
// In the attention:
//   scores  the core's relative keys (SdpaSpec::rel_q = q, rel_k [H, M, D] = a^K of the M
//           distances in the core's column order), scaled like q·k: no [T, S] tensor there;
//           query_score_bias gives the same term dense (the reference);
//   values  Σ_j α_ij a^V_r: a PositionScheme value term (value_term, mixer.h) from the
//           materialised weights: the vectors of every pair gathered into [T, S, D], then
//           one [B H, S] x [S, D] product per query (value_term_ref: plain loops over i, j).
// The value term reads α, so this scheme runs on the attention's composite path.
// Initial a^K, a^V: N(0, 1/sqrt(R + D)) (the paper's tensor2tensor code leaves them to the
// default Glorot initialiser, whose scale this is).
#pragma once

#include "core/random.h"
#include "nn/mixer.h"

namespace tz::nn {

struct ShawOptions {
  int64_t dim = 0;            // C
  int64_t heads = 0;          // H (D = C / H)
  int64_t layers = 1;         // N: a pair of tables per layer
  int64_t max_distance = 16;  // K
};

class ShawRelativePositions : public PositionScheme {
 public:
  ShawRelativePositions(const ShawOptions& options, Generator& gen);
  // q_i · a^K_{clip(j - i)} / sqrt(D) [B, H, T, S] (dense reference of score_terms).
  Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                          const MixerContext* ctx = nullptr) const override;
  bool biases_with_queries() const override { return true; }
  bool score_terms(Tensor& q, int64_t S, int64_t q_start, int64_t k_start, SdpaSpec& spec,
                   const MixerContext* ctx = nullptr) const override;
  // Σ_j α_ij a^V_{clip(j - i)} [B, H, T, D] for α [B, H, T, S] of queries at key positions
  // q_offset.. over keys 0..S-1.
  Tensor value_term(const Tensor& probs, int64_t q_offset, const MixerContext* ctx = nullptr) const override;
  bool biases_values() const override { return true; }
  std::string describe() const override;

  // The index r + K of key j for query i (positions).
  int64_t bucket(int64_t i, int64_t j) const;
  // a^K [R, D] or a^V of one layer.
  Tensor keys(int64_t layer) const;
  Tensor values(int64_t layer) const;
  // rel_k [H, M, D]: a^K of the distance in the core's column S - 1 + i - j.
  Tensor relative_keys(int64_t layer, int64_t q_start, int64_t k_start, int64_t T, int64_t S) const;
  Tensor value_term_ref(const Tensor& probs, int64_t q_offset, int64_t layer) const;

  ShawOptions options;
  Tensor a_k, a_v;  // [N, R, D]
};

}  // namespace tz::nn
