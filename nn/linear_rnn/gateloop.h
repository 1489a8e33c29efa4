// GateLoop: data-controlled linear recurrence with complex-valued state transitions.
// "GateLoop: Fully Data-Controlled Linear Recurrence for Sequence Modeling", Katsch 2023,
// arXiv:2311.01927.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H (key and value dim per head).
//   q = x W_q / sqrt(D),  k = x W_k,  v = x W_v                        [B, H, T, D]
//   a_t = σ(x_t W_a) e^{i θ_t},  θ_t = x_t W_θ   (one complex gate per key channel)
//   h_t = diag(a_t) h_{t-1} + k_t^T v_t   (h_t complex [D, D]),   y_t = Re(q_t h_t)
//   out = W_o (silu(x W_g) ⊙ GroupNorm_H(y))
// Unrolled (the paper's surrogate attention): y_t = Re Σ_{s<=t} q_t diag(Π_{r=s+1}^t a_r) k_s^T v_s.
// On the real chunked kernel (core/kernels/linear_attention.h, per-key-channel log decays):
// with ℓ_t = Σ_{r<=t} log|a_r| and φ_t = Σ_{r<=t} θ_r (from the call's first token),
//   Re(q_td Π a_rd k_sd) = q_td k_sd e^{ℓ_td - ℓ_sd} cos(φ_td - φ_sd)
//                        = e^{ℓ_td - ℓ_sd} (q_td cos φ_td · k_sd cos φ_sd + q_td sin φ_td · k_sd sin φ_sd),
// so q' = [q cos φ | q sin φ], k' = [k cos φ | k sin φ] (2D key channels) with the log decay
// [log|a| | log|a|] give y exactly: the magnitudes stay in log space inside the kernel (its
// guard handles gates summing far below -40 in a chunk), the phases are bounded rotations of
// q and k. The kernel's state S' = [S_c; S_s] is the complex state in the rotating frame:
// h_t = e^{iφ_t} (S_c - i S_s); a complex initial state h0 enters as S_c = Re h0, S_s = -Im h0.
// Decoding keeps h [B, H, D, D, 2] (re, im); every call restarts φ at 0, so φ never grows
// past one call's sum of phases (f32 loses cos φ's precision only over very long calls).
// Deviations: q, k, v real (the paper's complex projections are not needed for Re(q h));
// no biases; GroupNorm and the output gate as in GLA.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

// The recurrence's inputs per head: q, k [B, H, T, D], v [B, H, T, Dv], log|a| and θ
// [B, H, T, D]; h0 [B, H, D, Dv, 2] or undefined (zeros).
struct GateLoopInputs {
  Tensor q, k, v, log_mag, phase, h0;
};
struct GateLoopResult {
  Tensor out, state;  // y [B, H, T, Dv]; h_T [B, H, D, Dv, 2]
};
// By the rotation onto the real linear-attention kernel (the form and chunk of `spec`).
GateLoopResult gateloop_kernel(const GateLoopInputs& in, LinearAttentionForm form, int64_t chunk);
// The plain complex recurrence, one token at a time (plain ops: the reference).
GateLoopResult gateloop_recurrent(const GateLoopInputs& in);
// The materialised surrogate attention: weights e^{ℓ_t - ℓ_s} cos(φ_t - φ_s) for s <= t,
// [B, H, T, T, D] (no h0).
GateLoopResult gateloop_quadratic(const GateLoopInputs& in);

struct GateLoopOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
};

struct GateLoopState : MixerState {
  Tensor h;  // [B, H, D, D, 2]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("h", h);
  }
};

class GateLoop : public Mixer {
 public:
  GateLoop(const GateLoopOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  GateLoopInputs inputs(const Tensor& x) const;  // h0 left undefined

  GateLoopOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, a_proj, theta_proj, g_proj, o_proj;
  std::shared_ptr<HeadGroupNorm> norm;
};

}  // namespace tz::nn
