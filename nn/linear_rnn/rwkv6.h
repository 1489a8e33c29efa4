// RWKV-6 "Finch" time mixing and channel mixing. "Eagle and Finch: RWKV with Matrix-Valued
// States and Dynamic Recurrence", Peng et al. 2024, arXiv:2404.05892.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head, R1 the token-shift LoRA
// rank, R2 the decay LoRA rank, F the channel mix's hidden width.
// Data-dependent token shift (ddlerp), with Δ_t = x_{t-1} - x_t (x_{-1} from the state, or 0):
//   lora_j(x) = λ_j + tanh(x A) B_j                           A [C, 5 R1], B_j [R1, C]
//   ddlerp_j(x_t) = x_t + Δ_t ⊙ lora_j(x_t + Δ_t ⊙ μ_x),  j ∈ {w, k, v, r, g}
// Time mixing (the mixer), per head:
//   r, k, v = ddlerp_{r,k,v}(x) W_{r,k,v},   g = silu(ddlerp_g(x) W_g)
//   d_t = d + tanh(ddlerp_w(x_t) A_w) B_w,   w_t = exp(-exp(d_t))   (per channel, in (0, 1))
//   S_t = diag(w_t) S_{t-1} + k_t^T v_t,     o_t = r_t (S_{t-1} + diag(u) k_t^T v_t)
//   out = (g ⊙ GroupNorm_H(o)) W_o
// The kernel (core/kernels/linear_attention.h) takes log w_t = -exp(d_t) per key channel (never
// exp(-exp(.)) itself, which underflows to 0 in f32 for d_t > 4.5) and the bonus u; its chunked
// form runs a whole sequence (linear_form, linear_chunk), the recurrent form a decode step.
// Channel mixing (RwkvChannelMix, the block's FFN), its own token shift with static μ:
//   k = relu(lerp_k(x) W_k)^2,  out = σ(lerp_r(x) W_r) ⊙ (k W_v),  lerp_j(x_t) = x_t + Δ_t ⊙ μ_j
// Its token shift needs the previous token when decoding, so it is a mixer (id
// rwkv6_channel_mix, state x_{t-1}) placed in a mixer sublayer, as the FFNs with a decoding
// state are: the RWKV block x += TimeMix(LN(x)); x += ChannelMix(LN(x)) is the layout "ss"
// with mixers [rwkv6, rwkv6_channel_mix] (the ids' test configs). Its layer ratio l / L
// counts those sublayer blocks: the channel mix of RWKV layer p starts at (2p + 1) / 2L
// rather than p / L.
// Initialisation follows the reference code's schedules in layer l of L (ratios l / L):
// μ = 1 - (c / C)^(1 - l / L), d_c = -6 + 5 (c / (C - 1))^(0.7 + 1.3 l / L), u from the
// same ratios; the LoRA factors are small random (the reference zeroes B, which would leave
// A without gradient at the start).
// Eagle (RWKV-5), the key rwkv5_eagle: the same with a static decay,
// w_t = exp(-exp(d)), and a static token shift, lerp_j(x_t) = x_t + Δ_t ⊙ λ_j (no LoRA).
// Deviations: no biases; GroupNorm eps 64e-5 as the reference code.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

inline const Key<bool> kRwkvEagle{
    "rwkv5_eagle", false, "RWKV-5 Eagle: a static decay per channel and a static token shift (no ddlerp, no LoRA)"};

struct Rwkv6Options {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  bool eagle = false;            // RWKV-5 Eagle: static decay d, static token shift (no LoRA)
  int64_t mix_rank = 32;         // R1: ddlerp's LoRA rank
  int64_t decay_rank = 64;       // R2: the decay's LoRA rank
  int64_t layer = 0, depth = 1;  // l, L: the initial schedules
};

// The matrix state S [B, H, D, D] and the previous token x_{t-1} [B, C].
struct Rwkv6State : LinearRnnState {
  Tensor shift;
  void visit(StateVisitor& v) override {
    LinearRnnState::visit(v);
    v.tensor("shift", shift);
  }
};

// x_{t-1} for every t of x [B, T, C]: the state's last token (or zeros) then x[:, :T-1];
// `shift` (when given) receives x[:, T-1].
Tensor token_shift(const Tensor& x, Tensor* shift);
// μ_c = 1 - (c / C)^power [C]: the reference code's token-shift mix schedule (RWKV-4 and 6),
// for the lerp x_t + (x_{t-1} - x_t) ⊙ μ.
Tensor rwkv_mix_schedule(int64_t C, double power);

class Rwkv6 : public Mixer {
 public:
  Rwkv6(const Rwkv6Options& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The kernel's inputs for x [B, T, C] and its previous tokens xp: r, k, v [B, H, T, D],
  // the log-decay -exp(d_t) [B, H, T, D] and the gate g [B, T, C].
  struct Inputs {
    Tensor r, k, v, log_w, g;
  };
  Inputs inputs(const Tensor& x, const Tensor& xp) const;

  Rwkv6Options options;
  std::shared_ptr<Linear> r_proj, k_proj, v_proj, g_proj, o_proj, mix_down, decay_down, decay_up;
  std::vector<std::shared_ptr<Linear>> mix_up;  // B_w, B_k, B_v, B_r, B_g
  Tensor mu_x, mu, decay, bonus;                // μ_x [C], λ [5, C], d [C], u [H, D]
  std::shared_ptr<HeadGroupNorm> norm;
};

struct RwkvChannelMixOptions {
  int64_t dim = 0;     // C
  int64_t hidden = 0;  // F; 0 = 3.5 C rounded down to a multiple of 32 (at least 32)
  int64_t layer = 0, depth = 1;
};

// The previous token x_{t-1} [B, C].
struct RwkvShiftState : MixerState {
  Tensor shift;
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("shift", shift);
  }
};

class RwkvChannelMix : public Mixer {
 public:
  RwkvChannelMix(const RwkvChannelMixOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  // out [B, T, C] of x [B, T, C]; `shift` [B, C] (when given) holds x_{-1} and receives x_{T-1}.
  Tensor mix(const Tensor& x, Tensor* shift = nullptr) const;
  std::string describe() const override;

  RwkvChannelMixOptions options;
  std::shared_ptr<Linear> k_proj, v_proj, r_proj;
  Tensor mu_k, mu_r;
};

}  // namespace tz::nn
