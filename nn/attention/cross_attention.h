// Cross-attention (Vaswani et al. 2017, arXiv:1706.03762, the encoder-decoder attention): the
// attention pipeline of attention.h built with a context width E > 0 (ModelDims::context_dim),
// reading MixerContext::context.
//
// Shapes: B batch, T query positions, S context positions, C model width, E context width,
// H heads, D = C / H.
//   q = x W_q [B, H, T, D];  k, v = c W_k, c W_v [B, H, S, D]       (parameters q, kv, out)
//   A = softmax(q k^T / sqrt(D) + M) [B, H, T, S],  M_bj = -inf where context_padding[b, j] = 0
//   y = concat_h(A v) W_o [B, T, C]
// Every attention feature that is not tied to x's own positions works here (kv_heads,
// qk_norm, talking_heads, ...); the fused kernel runs, with the padding as a mask term,
// unless a feature needs the scores (sdpa.h).
// CrossAttention is the same layer with the call form of the encoder-decoder wrappers:
// forward(x, context, mask). With context = x and causal = true it is masked self-attention
// (decoders); with a mask, the padding of an encoder. A query row whose keys are all masked
// gets 0 from the fused kernel (NaN on the composite path): keep at least one key.
#pragma once

#include "nn/attention/attention.h"

namespace tz::nn {

struct CrossAttentionOptions {
  int64_t dim = 0;          // C (queries and output)
  int64_t heads = 0;        // H; must divide dim
  int64_t context_dim = 0;  // E; 0 = dim
  bool causal = false;      // key j hidden from query i when j > i (self-attention use)
  bool bias = true;
};

class CrossAttention : public Attention {
 public:
  CrossAttention(const CrossAttentionOptions& options, Generator& gen);
  // x [B, T, C], context [B, S, E], context_mask [B, S] (nonzero = visible) or undefined.
  Tensor forward(const Tensor& x, const Tensor& context, const Tensor& context_mask = Tensor());
  using Attention::forward;
};

}  // namespace tz::nn
