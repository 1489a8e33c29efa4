// TUPE: untied positional encoding. "Rethinking Positional Encoding in Language
// Pre-training", Ke, He & Liu 2020, arXiv:2006.15595 (ICLR 2021), eq. (6)-(7).
//
// Shapes: B batch, H heads, T queries (positions q_start..), S keys (positions k_start..),
// C model width, D = C / H head size, p learned absolute positions [context, C].
// Positions are not added to the word embeddings; each head scores
//   α_ij = (x_i W^Q)(x_j W^K)^T / sqrt(2D)  +  (p_i U^Q)(p_j U^K)^T / sqrt(2D)   [+ b_{j-i}]
// with U^Q, U^K [C, C] (one D-wide slice per head) and p shared by all layers, so the
// position features p U^Q, p U^K do not depend on the layer: they are computed once per
// forward (first layer) and reused (ctx->carry). b_{j-i} is TUPE-R's T5 bucket bias (option
// tupe_relative; off by default = TUPE-A).
// In the attention (score_terms): the content scale becomes 1/sqrt(2D), and the position
// term is the fused kernel's pair product of pair_q = p_i U^Q and pair_k = p_j U^K [1, H, n, D]
// with scale 1/sqrt(2D), evaluated tile by tile: no [H, T, S] tensor, k, v of G heads read in
// place; b_{j-i} is the kernel's relative bias table [H, T + S - 1].
// The dense form (query_score_bias, the reference): the attention scales q k^T by
// 1/sqrt(D); the term adds (1/sqrt(2) - 1) q k^T / sqrt(D), so the content term ends at
// 1/sqrt(2D), plus position_term [H, T, S].
// Deviation: the paper's [CLS] untying (θ_1, θ_2 for the first token) is for encoders with
// a [CLS] token; a decoder LM has none, so it is left out.
#pragma once

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/position/t5_bias.h"

namespace tz::nn {

inline const Key<bool> kTupeRelative{"tupe_relative", false,
                                     "TUPE-R: add a T5 bucketed relative bias b_{j-i} (32 buckets, 128)"};

class TUPEPositions : public PositionScheme {
 public:
  TUPEPositions(int64_t context, int64_t dim, int64_t heads, bool relative, Generator& gen);
  // Within a model (ctx with a carry) the position term is computed once per forward.
  Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                          const MixerContext* ctx = nullptr) const override;
  bool biases_with_queries() const override { return true; }
  // The content scale 1/sqrt(2D), the pair product of the position features, TUPE-R's table.
  bool score_terms(Tensor& q, int64_t S, int64_t q_start, int64_t k_start, SdpaSpec& spec,
                   const MixerContext* ctx = nullptr) const override;
  int64_t max_positions() const override { return context; }
  std::string describe() const override;
  // The position term [H, T, S] (+ b_{j-i} with tupe_relative), without sharing.
  Tensor position_term(int64_t q_start, int64_t T, int64_t k_start, int64_t S, DType dtype) const;
  // The position features [H, T + S, D]: p_i U^Q of the T queries, then p_j U^K of the S keys.
  Tensor position_features(int64_t q_start, int64_t T, int64_t k_start, int64_t S) const;

  int64_t context, dim, heads;
  std::shared_ptr<Embedding> pos;       // p [context, C]
  std::shared_ptr<Linear> u_q, u_k;     // U^Q, U^K
  std::shared_ptr<T5RelativeBias> rel;  // TUPE-R only
  mutable int64_t computations = 0;     // how often the position term or features were computed (the proof counts it)
};

}  // namespace tz::nn
