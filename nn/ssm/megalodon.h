// MEGALODON's layer: Mega with a complex EMA, timestep normalisation and normalised attention.
// "Megalodon: Efficient LLM Pretraining and Inference with Unlimited Context Length", Ma, Yang,
// Xiong, Chen, Yu, Zhang, May, Zettlemoyer, Levy and Zhou 2024, arXiv:2404.08801.
//
// Shape letters: B batch, T time, C model width, G norm groups (C / G channels each), N EMA
// dimensions per channel (as mega.h).
// Complex EMA (CEMA), per channel c and dimension j (α, δ, q as Mega's, θ_j = (j + 1) 2π σ(θ_c) / N):
//   h_{t,j} = α_j β_j x_t + q_j e^{iθ_j} h_{t-1,j},  CEMA(x)_t = Re Σ_j η_j h_{t,j}  (η complex)
//   kernel: K_ℓ = Re Σ_j η_j α_j β_j q_j^ℓ e^{iℓθ_j}  (q^ℓ = exp(ℓ log q): log space, as Mega)
//   recurrent form: the complex scan (core/scan.h), the decoding state h [B, C N, 2]
// Timestep normalisation (a group norm whose statistics are cumulative over time, so that
// position t sees only positions <= t): with n_t = (t + 1) C / G entries of group g so far,
//   μ_t = Σ_{s<=t} Σ_{c in g} x_{s,c} / n_t,   σ²_t = Σ_{s<=t} Σ_{c in g} x²_{s,c} / n_t - μ_t²
//   TN(x)_{t,c} = (x_{t,c} - μ_t) / sqrt(σ²_t + ε) w_c + b_c
// The decoding state keeps the two running sums per group. (The paper's kernel uses Welford's
// update; the two sums are exact in f64 and fine in f32 for normalised inputs; the proofs check
// them against a Welford loop.) Normalised attention: Z is rms-normalised before Q, K.
// Deviations: one attention head; the two-hop residual and the block's own norms are left to
// the host model's layout (this is the mixer: TN -> CEMA -> Mega's gated attention).
#pragma once

#include "nn/ssm/mega.h"

namespace tz::nn {

inline const Key<int64_t> kMegalodonGroups{"megalodon_groups", 2, "G: groups of the timestep normalisation"};

MegaOptions megalodon_options(const ModelDims& dims, const Config& config);

// x [B, T, C] -> [B, T, C]; sum, sum_sq [B, G] (may be null: zeros, not updated) hold the
// group sums of the positions before x and are advanced past it. weight, bias [C].
Tensor timestep_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, Tensor* sum,
                     Tensor* sum_sq, int64_t start, double eps = 1e-5);
// The plain loop (Welford's running mean and variance per group), f64, no affine: the reference.
void timestep_norm_ref(double* out, const double* x, int64_t B, int64_t T, int64_t C, int64_t G, double eps);

class Megalodon : public Mega {
 public:
  Megalodon(const MegaOptions& options, Generator& gen);
  Tensor norm_weight, norm_bias;  // [C]

 protected:
  Tensor prepare(const Tensor& x, MegaState* state) const override;
};

}  // namespace tz::nn
