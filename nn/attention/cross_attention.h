// Cross-attention (Vaswani et al. 2017, arXiv:1706.03762, the encoder-decoder attention).
//
// Shapes: B batch, T query positions, S context positions, C model width, E context width,
// H heads, D = C / H.
//   q = x W_q [B, H, T, D];  k, v = c W_k, c W_v [B, H, S, D]
//   A = softmax(q k^T / sqrt(D) + M) [B, H, T, S],  M_bj = -inf where context_mask[b, j] = 0
//   y = concat_h(A v) W_o [B, T, C]
// With context = x it is masked self-attention (encoders with padding), optionally causal.
// A query row whose keys are all masked has no defined softmax (NaN): keep at least one key.
// It is a plain composite (matmul, softmax, matmul) that stores the [B, H, T, S] probabilities.
#pragma once

#include "core/random.h"
#include "nn/layers.h"

namespace tz::nn {

struct CrossAttentionOptions {
  int64_t dim = 0;          // C (queries and output)
  int64_t heads = 0;        // H; must divide dim
  int64_t context_dim = 0;  // E; 0 = dim
  bool causal = false;      // key j hidden from query i when j > i (self-attention use)
  bool bias = true;
};

class CrossAttention : public Module {
 public:
  CrossAttention(const CrossAttentionOptions& options, Generator& gen);
  // x [B, T, C], context [B, S, E], context_mask [B, S] (nonzero = visible) or undefined.
  Tensor forward(const Tensor& x, const Tensor& context, const Tensor& context_mask = Tensor()) const;
  std::string describe() const override;
  CrossAttentionOptions options;
  std::shared_ptr<Linear> q, kv, out;
};

// The additive score mask [B, 1, 1, S] (0 visible, -inf hidden) of a key mask [B, S].
Tensor key_mask_bias(const Tensor& mask, DType dtype);

}  // namespace tz::nn
