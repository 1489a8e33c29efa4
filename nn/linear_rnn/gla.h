// Gated Linear Attention (GLA). "Gated Linear Attention Transformers with Hardware-Efficient
// Training", Yang, Wang, Shen, Panda, Kim 2023, arXiv:2312.06635 (ICML 2024).
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head (key and value).
// Per head, with a data-dependent gate per key channel (sec. 4.1, eq. 7-8):
//   q_t = x_t W_q / sqrt(D),  k_t = x_t W_k,  v_t = x_t W_v
//   α_t = σ(x_t W_α1 W_α2 + b_α)^(1/τ),  τ = 16,  W_α1 [C, 16], W_α2 [16, C] (low rank)
//   S_t = diag(α_t) S_{t-1} + k_t^T v_t,   o_t = q_t S_t                      (recurrent form)
//   O = ((Q ⊙ B)(K / B)^T ⊙ M) V with B_t = prod_{s<=t} α_s   (parallel form, in log space)
//   Y = GroupNorm_H(o),  out = (swish(x W_r) ⊙ Y) W_o
// The kernel takes log α_t = log σ(·) / τ per key channel; its chunked form is the paper's
// chunkwise training, with the secondary (sub-chunk) level replaced by the kernel's guard:
// a chunk is factorised only when its decay stays above -40, else formed pairwise in log space.
// linear_form picks the form of a whole-sequence forward, linear_chunk its chunk; decoding is
// the recurrent form.
// Deviations: the key dim per head is D (the paper halves it: d_k = C / 2 over all heads);
// no biases in the projections but b_α; the GroupNorm has an affine weight and bias.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

struct GLAOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  int64_t gate_rank = 16;   // rank of W_α1 W_α2
  double gate_temp = 16.0;  // τ: α = σ(.)^(1/τ) keeps decays near 1
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
};

}  // namespace tz::nn
