// Based: Taylor linear attention beside a small sliding-window softmax attention, with short
// convolutions. "Simple linear attention language models balance the recall-throughput
// tradeoff", Arora et al. 2024, arXiv:2402.18668 (ICML 2024), sec. 4.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head, d' the feature
// projection (16), F = 1 + d' + d'^2 Taylor features per head, W the window, K the conv width.
// Linear-attention branch, per head:
//   q, k = x W_q, x W_k [B, H, T, d'],  v = x W_v [B, H, T, D]
//   q, k, v ← conv_K(q, k, v)                 (short causal depthwise convs, see below)
//   φ(x) = [1, x, vec(x x^T) / √2] of x d'^(-1/4)   (feature_maps.h's taylor_features)
//   φ(q) . φ(k) = 1 + q.k / √d' + (q.k)^2 / (2 d')  ≈ exp(q.k / √d'), always >= 1/2
//   y_t = φ(q_t) S_t / (φ(q_t) . z_t + eps),  S_t = S_{t-1} + φ(k_t)^T v_t,  z_t = z_{t-1} + φ(k_t)
// Sliding-window branch, exact softmax over the last W keys (W = 64):
//   a, b, c = x W_a, x W_b, x W_c [B, H, T, D]
//   o_t = Σ_{t-W < j <= t} softmax_j(a_t . b_j / √D) c_j
// out = [y ; o] W_o (the two branches' heads concatenated, then one projection).
// The linear branch runs on the chunked linear-attention kernel (run_linear_attention, with
// its normaliser: the recurrent form decodes, the chunked and parallel forms run sequences);
// the window branch materialises its T x (W + T) band and decodes from a cache of the last W
// keys and values. A decode step costs O(F D + W D) per head whatever the position.
// Reuse: the map is feature_maps.h's taylor_features (the one the rebased proof checks) and
// the kernel call common.h's, as the feature-map mixers (feature_attention.h) use them; that
// mixer is not the host, because its q, k have the full head width D, and Based projects them
// to d' and adds a window branch and convs, which would be three special cases in its forward.
// Deviations: the paper stacks separate layers (gated short-conv BaseConv layers, Taylor
// linear attention layers and window attention layers, in a fixed mix); one id here is one
// mixer, so the three sit in one layer: the window branch beside the linear one, and the
// short convs (width based_conv = 3, as BaseConv's) on the linear branch's q, k, v, as
// flash-linear-attention's linear-attention layers apply them (use_short_conv). The window
// has no rotary position (the model's own position scheme applies); eps = 1e-6.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

inline const Key<int64_t> kBasedFeatureDim{"based_feature_dim", 16,
                                           "d': the q, k projection of Based's Taylor linear attention, per head"};
inline const Key<int64_t> kBasedWindow{"based_window", 64,
                                       "W: keys of Based's sliding-window softmax branch (0 = no window branch)"};
inline const Key<int64_t> kBasedConv{"based_conv", 3,
                                     "K: width of the short causal convs on Based's q, k, v (0 = none)"};

struct BasedOptions {
  int64_t dim = 0;           // C
  int64_t heads = 0;         // H (divides C)
  int64_t feature_dim = 16;  // d'
  int64_t window = 64;       // W (0 = no window branch)
  int64_t conv = 3;          // K (0 = no conv)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  bool bias = true;
};

// The linear branch's S [B, H, F, D + 1] (normaliser column), the conv's last K - 1 inputs
// [B, K - 1, 2 H d' + C], the window's last W keys and values [B, H, W, D].
struct BasedState : LinearRnnState {
  Tensor conv, win_k, win_v;
  void visit(StateVisitor& v) override {
    LinearRnnState::visit(v);
    if (conv.defined()) v.tensor("conv", conv);
    if (win_k.defined()) {
      v.tensor("win_k", win_k);
      v.tensor("win_v", win_v);
    }
  }
};

class Based : public Mixer {
 public:
  Based(const BasedOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  int64_t head_dim() const { return options.dim / options.heads; }
  int64_t feature_count() const { return 1 + options.feature_dim + options.feature_dim * options.feature_dim; }
  // φ(x d'^(-1/4)) of q or k [B, H, T, d']: [B, H, T, F].
  Tensor features(const Tensor& x) const;

  BasedOptions options;
  std::shared_ptr<Linear> qkv_proj;  // C -> q | k | v of the linear branch (H d', H d', C)
  std::shared_ptr<Linear> win_proj;  // C -> a | b | c of the window branch (3 C)
  std::shared_ptr<Linear> o_proj;    // 2 C (C without a window) -> C
  Tensor conv_weight;                // [2 H d' + C, K]

 private:
  // The window branch: o [B, H, T, D] of a, b, c [B, H, T, D] at positions start.., the
  // state's cache (when given) holding the W keys before, which it then receives.
  Tensor window_attention(const Tensor& a, const Tensor& b, const Tensor& c, int64_t start, BasedState* st) const;
};

}  // namespace tz::nn
