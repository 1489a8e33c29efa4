// S4, the structured state space. "Efficiently Modeling Long Sequences with Structured State
// Spaces", Gu, Goel and Ré 2021, arXiv:2111.00396.
//
// Shape letters: B batch, T time (L the kernel length), C model width (one SSM per channel, the
// paper's H), N state size (all N complex modes are kept).
// A normal-plus-low-rank state matrix in the eigenbasis of its normal part, shared by the
// channels; per channel a step Δ_c and an output row C_c:
//   A = Λ - P P*  (Λ diagonal, P a column),   x' = A x + B u,   y = Re(C x) + D u
// Initialisation: HiPPO-LegS (or FouT) in NPLR form (core/kernels/ssm_kernels.h: nplr), so at
// init the layer is the dense HiPPO system seen in another basis; Δ log-uniform in
// [ssm_dt_min, ssm_dt_max]; C ~ N(0, 1/2) per part.
// Bilinear:  Ā = (I - Δ/2 A)^{-1}(I + Δ/2 A) = 2M - I,  B̄ = Δ M B,  M = (I - Δ/2 A)^{-1}, and M by
//   Woodbury: with E = diag(1 - Δ/2 λ), M = E^{-1} - (Δ/2) E^{-1}P P* E^{-1} / (1 + (Δ/2) P* E^{-1} P).
// Convolution form (the paper's algorithm 1): the kernel's truncated generating function at the
// L roots of unity z_k = e^{-2πik/L}, where z^L = 1 turns C (I - Ā^L z^L) into C̃ = C (I - Ā^L):
//   K̂(z) = Σ_{ℓ<L} (C Ā^ℓ B̄) z^ℓ = C̃ (I - Ā z)^{-1} B̄ = Δ C̃ (diag(d) + β P P*)^{-1} B,
//   d_n = (1 - z) - β λ_n,  β = Δ/2 (1 + z)
//   = Δ [k_CB - β k_CP k_PB / (1 + β k_PP)],  k_XY = Σ_n X_n Y_n / d_n  (Cauchy sums; X ∈ {C̃, P*})
//   (the paper divides by 1 + z first, which is 0 at z = -1; this form needs no special case)
//   K_ℓ = Re (1/L) Σ_k K̂(z_k) e^{2πikℓ/L},   y = K * u + D u   (long convolution by FFT)
//   The points are taken on the circle |z| = ρ = 2^{-1/L} instead (z_k = ρ e^{-2πik/L}, C̃ =
//   C (I - ρ^L Ā^L), and K_ℓ gets a factor ρ^{-ℓ} <= 2): on |z| = 1, d_n vanishes where a mode
//   of Λ alone is undamped (FouT's λ = 0 at z = 1, any λ = iω at some z), although the whole
//   A is stable; inside the circle no Re λ <= 0 can make d_n zero.
// Recurrent form (decoding), O(N) per step by the same Woodbury identity:
//   v = x + Δ/2 (Λ x - P (P* x)) + Δ B u_t,   x_t = M v,   y_t = Re(C x_t) + D u_t
// Choices, stated: the Cauchy sums are evaluated directly (O(C L N), no fast Cauchy kernel) and
// the inverse DFT is a matmul (O(C L²)); C is the parameter and C̃ = C - C Ā^L is computed by
// log₂ L dense N x N squarings (the paper trains C̃ directly), so that the kernel, the recurrence
// and decoding are one system at every length. Λ's real part is trained as is (0 for FouT).
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/ssm/ssm_block.h"

namespace tz::nn {

inline const Key<std::string> kS4Measure{"s4_measure", "legs", "S4's HiPPO initialisation: legs or fout"};

struct S4Options {
  int64_t dim = 0;     // C
  int64_t state = 16;  // N
  double dt_min = 0.001, dt_max = 0.1;
  bool fout = false;  // HiPPO-FouT instead of LegS (How to Train Your HiPPO)
  std::string name = "S4";
};
S4Options s4_options(const ModelDims& dims, const Config& config, const Key<std::string>& measure = kS4Measure);

class S4 : public SsmBlock {
 public:
  S4(const S4Options& options, Generator& gen);
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The SSM alone (before GELU and out_proj), for tests. u [B, T, C].
  Tensor kernel(int64_t L) const;                                     // K [C, L] by Cauchy + Woodbury
  Tensor convolve(const Tensor& u) const override;                    // K * u + D u by the long convolution
  Tensor recur(const Tensor& u, Tensor* x = nullptr) const override;  // the O(N) recurrence; *x: initial, then final

  S4Options options;
  Tensor log_dt, A_re, A_im, P_re, P_im, B_re, B_im, C_re, C_im, D;  // [C], [N] x 6, [C, N] x 2, [C]
};

}  // namespace tz::nn
