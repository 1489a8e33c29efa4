// DSS, diagonal state spaces. "Diagonal State Spaces are as Effective as Structured State
// Spaces", Gupta, Gu and Berant 2022, arXiv:2203.14343.
//
// Shape letters: B batch, T time (L the kernel length), C model width (one SSM per channel, the
// paper's H), N state size, P = N / 2 complex modes (the paper's N).
// A = diag(λ) with λ_n = Re λ_n + i Im λ_n, Re λ = -exp(A_log_re) < 0, shared by the channels;
// per channel a step Δ_c (log-uniform in [ssm_dt_min, ssm_dt_max]) and weights w [C, P] complex.
//   DSS_exp:      K_ℓ = Re Σ_n w_n λ_n^{-1} (e^{λ_nΔ} - 1) e^{λ_nΔℓ}
//   DSS_softmax:  K_ℓ = Re Σ_n w_n λ_n^{-1} softmax_ℓ(λ_nΔℓ)
//                     = Re Σ_n w_n λ_n^{-1} (e^{λ_nΔ} - 1) / (e^{λ_nΔL} - 1) · e^{λ_nΔℓ}
//     (the softmax over ℓ < L of a geometric sequence has that closed form)
// Both are S4D's Vandermonde kernel (nn/ssm/diagonal.h) with B̄_n = w_n λ_n^{-1} (e^{λΔ} - 1)
// [/ (e^{λΔL} - 1)] and C̄ = 1, so the recurrent form is the complex scan
//   h_t = e^{λΔ} h_{t-1} + B̄ u_t,  y_t = Re Σ_n h_{t,n} + D u_t   (the decoding state h [B, C P, 2])
//   out = out_proj(GELU(K * u + D u))
// Initialisation (the paper's): λ = the eigenvalues of HiPPO-LegS's normal part with Im λ > 0
// (-1/2 + iω, core/kernels/ssm_kernels.h), w ~ N(0, 1/2) per part.
// Deviations: DSS_softmax normalises over L = the model's context (not over each input's own
// length), so that the layer is one linear time-invariant system and decoding a prefix equals
// the full forward; and keeps Re λ < 0 as DSS_exp (the paper's softmax allows either sign).
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/ssm/ssm_block.h"

namespace tz::nn {

inline const Key<std::string> kDssKernel{"dss_kernel", "exp", "DSS's kernel: exp (DSS_exp) or softmax (DSS_softmax)"};

struct DssOptions {
  int64_t dim = 0;     // C
  int64_t state = 16;  // N (P = N / 2 modes)
  double dt_min = 0.001, dt_max = 0.1;
  bool softmax = false;  // DSS_softmax instead of DSS_exp
  int64_t length = 0;    // L of the softmax normalisation (the model's context)
};
DssOptions dss_options(const ModelDims& dims, const Config& config);

class Dss : public SsmBlock {
 public:
  Dss(const DssOptions& options, Generator& gen);
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The SSM alone (before GELU and out_proj), for tests. u [B, T, C].
  Tensor kernel(int64_t L) const;                                     // K [C, L]
  Tensor convolve(const Tensor& u) const override;                    // K * u + D u by the long convolution
  Tensor recur(const Tensor& u, Tensor* h = nullptr) const override;  // by the scan; *h: initial, then final state

  DssOptions options;
  Tensor log_dt, A_log_re, A_im, W_re, W_im, D;  // [C], [P] x 2, [C, P] x 2, [C]

 private:
  struct Discrete {
    Tensor dA_re, dA_im, a_re, a_im, b_re, b_im;  // λΔ, e^{λΔ}, B̄: [C, P] each
  };
  Discrete discretise() const;
};

}  // namespace tz::nn
