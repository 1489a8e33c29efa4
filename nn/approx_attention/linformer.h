// Linformer: self-attention with keys and values projected to a fixed length k. "Linformer:
// Self-Attention with Linear Complexity", Wang, Li, Khabsa, Fang, Ma 2020, arXiv:2006.04768.
//
// Shapes: B batch, T positions (T <= n, the model's context), C model dim, H heads, D = C / H,
// k the projected length. Per head, with E, F in R^{k x n} learned:
//   q, k, v = split_heads(x W_qkv)                       [B, H, T, D]
//   head = softmax(q (E k)^T / sqrt(D)) (F v)             [B, H, T, D]   (sec. 4, eq. 7)
//   y = merge_heads(head) W_o                             [B, T, C]
// Scores are [T, k], not [T, T]: time and memory O(T k). A sequence shorter than n uses the
// first T columns of E and F, which is the paper's fixed length n with the keys and values
// zero-padded.
//
// Sharing (sec. 4, "Additional Efficiency Techniques"): `linformer_share` = none (E_h, F_h per
// head), headwise (one E, one F per layer, the default), kv (one E = F per layer). The paper's
// layerwise sharing (one E for all layers) is not offered: each layer is built on its own.
//
// Not causal: E k mixes all T positions, so output t reads inputs after t (the paper is an
// encoder; causal() says so and the zoo checks it). The initialisation of E and F, uniform in
// +-1/sqrt(k), is a choice: the paper does not give one.
#pragma once

#include <memory>

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kLinformerK{"linformer_k", 64, "Linformer: projected length k of keys and values"};
inline const Key<std::string> kLinformerShare{"linformer_share", "headwise",
                                              "Linformer: E, F sharing: none, headwise or kv (E = F)"};

class Linformer : public Mixer {
 public:
  enum class Share { none, headwise, kv };
  Linformer(int64_t dim, int64_t heads, int64_t context, int64_t k, Share share, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool causal() const override { return false; }
  std::string why_no_step() const override { return "Linformer projects all T keys at once: not causal"; }
  std::string describe() const override;
  static Share parse_share(const std::string& s);

  int64_t dim, heads, context, k;
  Share share;
  std::shared_ptr<Linear> qkv, out;
  Tensor E, F;  // [H or 1, k, n]; F undefined when share = kv
};

}  // namespace tz::nn
