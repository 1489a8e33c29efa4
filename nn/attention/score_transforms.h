// Attention-score transforms of the composite attention path (nn/attention/attention.cpp):
// what happens between the raw logits q k^T / sqrt(D) [B, H, T, S] and the weights that
// multiply the values. Each is one paper's idea:
//
// Talking-Heads Attention (Shazeer et al. 2020, arXiv:2003.02436):
//   L'_{h'} = sum_h P^l_{h'h} L_h  before the mask and softmax,  W'_{h''} = sum_{h'} P^w_{h''h'} W_{h'}
//   after it (P^l, P^w [H, H], initialised to the identity = plain attention).
// RealFormer (He et al. 2020, arXiv:2012.11747):
//   S^l = Q^l K^{lT} / sqrt(D) + S^{l-1}; A^l = softmax(S^l + M); S^l is handed to layer l+1
//   (through MixerContext::carry). The mask is applied after the sum, so S^l is unmasked.
// Explicit Sparse Transformer (Zhao et al. 2019, arXiv:1912.11637):
//   per query row keep the k largest (allowed) logits, set the rest to -inf, then softmax.
//   Deviation: ties with the k-th value are all kept (a measure-zero event for real scores).
// Adaptively Sparse Transformers (Correia et al. 2019, arXiv:1909.00015): alpha-entmax replaces
//   softmax (the op is tz::entmax, autograd/ops_entmax.cpp). Not done: a learned alpha per head.
// Adaptive Attention Span (Sukhbaatar et al. 2019, arXiv:1905.07799):
//   m_z(x) = clamp((R + z - x) / R, 0, 1) on the distance x = i - j,
//   a_ij = m_z(i - j) e^{s_ij} / sum_k m_z(i - k) e^{s_ik}  (= softmax * m, renormalised),
//   z = S * clamp(z', 0, 1) learned per head, with the L1 penalty lambda * sum_h z_h added to
//   the loss through ctx.aux. Not done: the dynamic variant z_t = S sigmoid(v x_t + b).
#pragma once

#include "core/tensor.h"
#include "nn/mixer.h"

namespace tz::nn {

// p [H, H] mixes s [B, H, T, S] across heads: out_h' = sum_h p[h', h] s_h.
Tensor mix_heads(const Tensor& p, const Tensor& s);
// RealFormer: adds the previous layer's scores held in ctx.carry (if any) and stores the sum
// there for the next layer. Throws when the shapes differ (layers with different heads).
Tensor residual_scores(const Tensor& raw, const MixerContext& ctx);
// The carry key RealFormer uses.
inline const char* kResidualScoresKey = "attn_residual_scores";
// Scores with all but the k largest entries of each row (last dim) set to -inf.
Tensor topk_mask(const Tensor& scores, int64_t k);
// The soft span mask m [1, H, T, S] for spans z [H], ramp R, query t at key position
// mask_offset + t (distance |mask_offset + t - j|).
Tensor adaptive_span_mask(const Tensor& z, double ramp, int64_t T, int64_t S, int64_t mask_offset);
// softmax probabilities p [B, H, T, S] reweighted by the span mask and renormalised.
Tensor adaptive_span_weights(const Tensor& p, const Tensor& z, double ramp, int64_t mask_offset);

}  // namespace tz::nn
