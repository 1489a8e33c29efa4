// RetNet's multi-scale retention. "Retentive Network: A Successor to Transformer for Large
// Language Models", Sun et al. 2023, arXiv:2307.08621.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head; positions n = ctx.start..
// Per head h, with decay γ_h = 1 - 2^(-5-h) (eq. 8: different per head, fixed):
//   Q = (X W_Q) ⊙ Θ,  K = (X W_K) ⊙ Θ̄ / sqrt(D),  V = X W_V           (Θ_n = e^{inθ}, eq. 3-5)
//   recurrent   S_n = γ S_{n-1} + K_n^T V_n,   o_n = Q_n S_n                             (eq. 6)
//   parallel    O = (Q K^T ⊙ D) V,  D_nm = γ^{n-m} for n >= m, else 0                      (eq. 5)
//   chunkwise   the chunked form of core/kernels/linear_attention.h                         (eq. 7)
//   Y = GroupNorm_H(concat_h o_h),  MSR(X) = (swish(X W_G) ⊙ Y) W_O                         (eq. 8)
// All three forms run the one kernel (log-decay log γ_h per head and step); linear_form picks
// the form of a whole-sequence forward, linear_chunk its chunk; decoding is the recurrent form.
// Deviations: Θ is the rotary rotation (pairs of channels rotated by nθ_k, θ_k =
// rotary_base^(-2k/D)), without xPos's extra per-channel scale, as in the paper's released
// code (γ already decays with distance); the value dim per head is D, not the paper's 2D;
// no biases in the projections; the GroupNorm has an affine weight and bias per channel.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

struct RetNetOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C; D = C / H even for the rotation)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  double rotary_base = 10000;  // θ_k = base^(-2k/D)
};

class RetNet : public Mixer {
 public:
  RetNet(const RetNetOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // log γ_h for the H heads.
  std::vector<double> log_gammas() const;

  RetNetOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, g_proj, o_proj;
  std::shared_ptr<HeadGroupNorm> norm;
};

}  // namespace tz::nn
