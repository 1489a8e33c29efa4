// Multi-head scaled dot-product attention (Vaswani et al. 2017, arXiv:1706.03762).
//
// Shapes: B batch, T query positions, S key positions (S = T without a cache, cache length
// + T with one), C model width, H heads, D = C / H head size.
//   q, k, v = x W_qkv split into H heads        [B, H, T, D], [B, H, S, D]
//   A = softmax(q k^T / sqrt(D) + bias + M)     [B, H, T, S], M_ij = -inf for j > offset + i
//   y = concat_h(A v) W_o                       [B, T, C]
// `bias` is the additive score hook (relative positions, ALiBi, padding masks); the KV cache
// holds past keys and values so decoding one token costs O(S), and cached decoding gives
// the same logits as the full forward (tests prove it).
#pragma once

#include "core/random.h"
#include "nn/layers.h"

namespace tz::nn {

struct AttentionOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H; must divide dim
  bool causal = true;
  bool bias = true;   // biases of the projections
  double dropout = 0.0;        // on the output projection (residual dropout)
  double out_init_std = 0.02;  // GPT-2 scales the residual projection by 1/sqrt(2 * layers)
};

// Past keys and values, preallocated to `capacity` positions. Used in no-grad decoding.
struct KVCache {
  Tensor k, v;  // [B, H, capacity, D]
  int64_t length = 0;
  int64_t capacity() const { return k.defined() ? k.size(2) : 0; }
};

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(const AttentionOptions& options, Generator& gen);
  // x [B, T, C]. With a cache, keys/values of x are appended after the cached ones and the
  // queries sit at positions cache->length ... cache->length + T - 1.
  Tensor forward(const Tensor& x, KVCache* cache = nullptr, const Tensor& score_bias = Tensor()) const;
  KVCache make_cache(int64_t batch, int64_t capacity, DType dtype = DType::f32) const;
  std::string describe() const override;

  AttentionOptions options;
  std::shared_ptr<Linear> qkv, out;
  std::shared_ptr<Dropout> resid_drop;
};

// Attention core on already projected heads: q [B, H, T, D], k, v [B, H, S, D]; query i sits
// at absolute position q_offset + i when causal. Plain composition of differentiable ops.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    int64_t q_offset = 0, const Tensor& score_bias = Tensor());

}  // namespace tz::nn
