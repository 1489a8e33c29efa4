// ALiBi. "Train Short, Test Long: Attention with Linear Biases Enables Input Length
// Extrapolation", Press et al. 2021, arXiv:2108.12409 (ICLR 2022).
//
// Shapes: H heads, T query positions, S key positions.
// No position vector is added anywhere; each head h = 1..H biases its scores by distance:
//   score_ij += -m_h · (i - j)      for keys j <= i (the causal mask hides j > i)
//   m_h = 2^(-8h/H)                 a geometric sequence, e.g. H = 8: 1/2, 1/4, ..., 1/256
// For H not a power of two (paper §3, footnote / its code): take the n = 2^floor(log2 H)
// slopes of n heads, then every other slope of 2n heads (2^(-8h/2n) for odd h = 1, 3, ...)
// until H slopes: the extra slopes interleave between the first ones.
// alibi_num_heads (x-transformers): only the first alibi_num_heads heads get biases (with
// the slopes of that many heads); the others see no positions (m = 0).
// For j > i the bias is -m_h |i - j| (symmetric) so that it also makes sense unmasked.
// As data: a relative-bias table [H, T + S - 1] (column S - 1 + i - j holds -m_h |q_offset +
// i - j|), which the attention core applies without storing a [T, S] bias.
#pragma once

#include <vector>

#include "nn/mixer.h"

namespace tz::nn {

// The H slopes m_1..m_H (interleaved when H is not a power of two).
std::vector<double> alibi_slopes(int64_t heads);

class ALiBiPositions : public PositionScheme {
 public:
  ALiBiPositions(int64_t heads, int64_t biased_heads);
  // The table [H, T + S - 1] for queries at key positions q_offset.. over keys 0..S-1.
  Tensor score_bias(int64_t heads, int64_t q_offset, int64_t T, int64_t S, DType dtype,
                    const MixerContext* ctx = nullptr) const override;
  bool biases_scores() const override { return true; }
  std::string describe() const override;
  int64_t heads, biased_heads;
  std::vector<double> slopes;  // [heads], zero beyond biased_heads
};

}  // namespace tz::nn
