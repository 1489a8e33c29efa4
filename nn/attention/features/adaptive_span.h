// Adaptive Attention Span. Sukhbaatar et al. 2019, arXiv:1905.07799 (ACL 2019).
//   m_z(x) = clamp((R + z - x) / R, 0, 1) on the distance x = i - j,
//   a_ij = m_z(i - j) e^{s_ij} / sum_k m_z(i - k) e^{s_ik}  (= softmax * m, renormalised),
// z = S_max clamp(z', 0, 1) learned per head (parameter span holds z'), with the L1 penalty
// lambda sum_h z_h added to the loss through ctx.aux. Not done: the dynamic variant
// z_t = S sigmoid(v x_t + b).
// Stage: normaliser (replaces softmax by the span-masked softmax; needs the materialised
// scores). The mask depends on i - j only, so decoding with a cache is exact.
#pragma once

#include "core/tensor.h"

namespace tz::nn {

// The soft span mask m [1, H, T, S] for spans z [H], ramp R, query t at key position
// q_offset + t (distance |q_offset + t - j|).
Tensor adaptive_span_mask(const Tensor& z, double ramp, int64_t T, int64_t S, int64_t q_offset);
// softmax probabilities p [B, H, T, S] reweighted by the span mask and renormalised.
Tensor adaptive_span_weights(const Tensor& p, const Tensor& z, double ramp, int64_t q_offset);

}  // namespace tz::nn
