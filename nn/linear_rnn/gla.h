// Gated Linear Attention (GLA). "Gated Linear Attention Transformers with Hardware-Efficient
// Training", Yang, Wang, Shen, Panda, Kim 2023, arXiv:2312.06635 (ICML 2024).
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head (key and value).
// Per head, with a data-dependent gate per key channel (sec. 4.1, eq. 7-8):
//   q_t = x_t W_q / sqrt(D),  k_t = x_t W_k,  v_t = x_t W_v
//     (gla_conv = K > 0: a_t = SiLU(conv_K(x W_a)_t) for a in q, k, v, as flash-linear-attention's
//     GLA layer with use_short_conv; off by default there and here)
//   α_t = σ(x_t W_α1 W_α2 + b_α)^(1/τ),  τ = 16 (gla_tau),  W_α1 [C, 16], W_α2 [16, C] (low rank)
//   S_t = diag(α_t) S_{t-1} + k_t^T v_t,   o_t = q_t S_t                      (recurrent form)
//   O = ((Q ⊙ B)(K / B)^T ⊙ M) V with B_t = prod_{s<=t} α_s   (parallel form, in log space)
//   Y = GroupNorm_H(o),  out = (swish(x W_r) ⊙ Y) W_o
// The kernel takes log α_t = log σ(·) / τ per key channel; its chunked form is the paper's
// chunkwise training, with the secondary (sub-chunk) level replaced by the kernel's guard:
// a chunk is factorised only when its decay stays above -40, else formed pairwise in log space.
// linear_form picks the form of a whole-sequence forward, linear_chunk its chunk; decoding is
// the recurrent form; the state holds S [B, H, D, D] and the conv's last K - 1 inputs.
// Deviations: the key dim per head is D (the paper halves it: d_k = C / 2 over all heads);
// no biases in the projections but b_α; the GroupNorm has an affine weight and bias; the q, k, v
// convs are one depthwise conv over the 3 C channels.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

inline const Key<int64_t> kGlaConv{"gla_conv", 0,
                                   "K: width of the short causal conv on q, k, v (flash-linear-attention's "
                                   "use_short_conv; its conv_size is 4); 0 = none, as the paper"};
inline const Key<double> kGlaTau{"gla_tau", 16.0,
                                 "tau: the gate temperature, alpha = sigmoid(.)^(1/tau) "
                                 "(flash-linear-attention's gate_logit_normalizer)"};

struct GLAOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  int64_t gate_rank = 16;   // rank of W_α1 W_α2
  double gate_temp = 16.0;  // τ: α = σ(.)^(1/τ) keeps decays near 1
  int64_t conv = 0;         // K: short conv on q, k, v (0 = none)
};

struct GLAState : LinearRnnState {
  Tensor conv;  // [B, K - 1, 3 C]; undefined when K <= 1
  void visit(StateVisitor& v) override {
    LinearRnnState::visit(v);
    if (conv.defined()) v.tensor("conv", conv);
  }
};

class GLA : public Mixer {
 public:
  GLA(const GLAOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // log α [B, H, T, D] of x [B, T, C].
  Tensor log_gates(const Tensor& x) const;

  GLAOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, r_proj, o_proj, gate_down, gate_up;
  std::shared_ptr<HeadGroupNorm> norm;
  Tensor conv_weight;  // [3 C, K] when K > 0
};

}  // namespace tz::nn
