// Local (sliding-window) attention with G key/value heads and a cache bounded by the window:
// the local MQA of Griffin ("Griffin: Mixing Gated Linear Recurrences with Local Attention for
// Efficient Language Models", De et al. 2024, arXiv:2402.19427, sec. 2.3: one KV head, window
// 1024) and the sliding-window attention of Samba (arXiv:2406.07522). Multi-query attention:
// Shazeer 2019, arXiv:1911.02150.
//
// Shapes: B batch, T query positions, C model dim, H query heads, G key/value heads (G
// divides H), D = C / H, w the window, W = w - 1 the cached positions.
//   q = x W_q [B, H, T, D];  k, v = x W_k, x W_v [B, G, T, D]  (rotated by the model's rotary
//   scheme when it has one, as Griffin and Samba rotate with RoPE)
//   o_i = sum_{i - w < j <= i} softmax_j(q_i . k_j / sqrt(D)) v_j   (the fused kernel's
//   WindowMask, each group of H / G query heads reading one KV head)
//   y = merge_heads(o) W_o
// Decoding: the next query at p reads keys p - w + 1 .. p, so the state keeps only the last
// W keys and values, [B, G, W, D] each, right-aligned in position order (the `keys` newest
// fill slots W - keys .. W - 1): its size does not grow with the history, which is what makes
// the hybrids' decoding state bounded. With G = H it is local_attention with a rolling cache.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<int64_t> kSparseKvHeads{
    "sparse_kv_heads", 0,
    "local_attention: G key/value heads with a cache of the window only (1 = Griffin's local MQA); 0 = one per "
    "query head, caching every position"};

struct LocalMqaOptions {
  int64_t dim = 0;       // C
  int64_t heads = 0;     // H
  int64_t kv_heads = 1;  // G (divides H)
  int64_t window = 0;    // w
};

struct LocalMqaState : MixerState {
  Tensor k, v;       // [B, G, W, D]
  int64_t keys = 0;  // positions held (<= W), in the last slots
  void visit(StateVisitor& s) override {
    MixerState::visit(s);
    s.tensor("k", k);
    s.tensor("v", v);
    s.count("keys", keys);
  }
};

class LocalMqa : public Mixer {
 public:
  LocalMqa(const LocalMqaOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  LocalMqaOptions options;
  std::shared_ptr<Linear> q_proj, kv_proj, out;
};

}  // namespace tz::nn
