// Multi-head scaled dot-product attention (Vaswani et al. 2017, arXiv:1706.03762).
//
// Shapes: B batch, T query positions, S key positions (S = T without a cache, cache length
// + T with one), C model width, H heads, D = C / H head size.
//   q, k, v = x W_qkv split into H heads               [B, H, T, D], [B, H, S, D]
//   q, k    = pos.rotate(q, k)       (RoPE-like position schemes)
//   A = softmax(q k^T / sqrt(D) + pos.score_bias + M)   [B, H, T, S], M_ij = -inf for j > start + i
//   y = concat_h(A v) W_o                               [B, T, C]
// The step form keeps every past key and value (the KV cache), so decoding a token costs
// O(S), and cached decoding gives the same logits as the full forward (tests prove it).
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

struct AttentionOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H; must divide dim
  bool causal = true;
  bool bias = true;   // biases of the projections
  double dropout = 0.0;        // on the output projection (residual dropout)
  double out_init_std = 0.02;  // GPT-2 scales the residual projection by 1/sqrt(2 * layers)
};

// The KV cache: past keys and values, preallocated to a capacity. For no-grad decoding.
struct KVState : MixerState {
  Tensor k, v;  // [B, H, capacity, D]
};

class Attention : public Mixer {
 public:
  Attention(const AttentionOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx) override;
  bool causal() const override { return options.causal; }
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  Tensor step(const Tensor& x, MixerState& state, const MixerContext& ctx) override;
  std::string describe() const override;

  AttentionOptions options;
  std::shared_ptr<Linear> qkv, out;
  std::shared_ptr<Dropout> drop;

 private:
  // Splits x [B, T, C] (positions start..) into q, k, v heads [B, H, T, D].
  void project(const Tensor& x, Tensor& q, Tensor& k, Tensor& v, int64_t start, const MixerContext& ctx) const;
  // The position scheme's additive score terms for queries at q_start.. over keys at
  // k_start..; static biases are built for queries numbered from mask_offset.
  Tensor position_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start, int64_t mask_offset,
                       const MixerContext& ctx) const;
};

// Attention core on already projected heads: q [B, H, T, D], k, v [B, H, S, D]; query i sits
// at absolute position q_offset + i when causal. Without a score bias it is the fused tiled
// op (tz::attention: no T x S matrix is stored); its result [B, H, T, D] is a view of a
// [B, T, H, D] buffer, so permuting back to [B, T, C] is free.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    int64_t q_offset = 0, const Tensor& score_bias = Tensor());
// The composite reference: matmul, scale, (+ bias), causal masked_fill, softmax, matmul. It
// stores the [B, H, T, S] probabilities; the tests compare the fused op against it.
Tensor scaled_dot_product_attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                        int64_t q_offset = 0, const Tensor& score_bias = Tensor());

}  // namespace tz::nn
