// S4D, the diagonal state-space layer. "On the Parameterization and Initialization of Diagonal
// State Space Models", Gu, Gupta, Goel and Ré 2022, arXiv:2206.11893.
//
// Shape letters: B batch, T time (L for the kernel length), C model width (one SSM per channel,
// the paper's H), N state size, P = N / 2 complex modes per channel (the other half are their
// conjugates, so the output is twice a real part).
// Per channel c and mode n (complex numbers kept as real pairs):
//   x'(t) = A x(t) + B u(t), y(t) = Re C x(t) + D u(t), A = diag(λ_n), Re λ_n < 0
//   S4D-Lin: λ_n = -1/2 + i π n;  S4D-Inv: λ_n = -1/2 + i (P / π) (P / (2n + 1) - 1)
//   ZOH with step Δ_c (log-uniform in [ssm_dt_min, ssm_dt_max]):
//     λ̄_n = e^{Δ λ_n},  B̄_n = (e^{Δ λ_n} - 1) / λ_n · B_n
//   kernel (Vandermonde over the whole L):  K_ℓ = 2 Re Σ_n C_n B̄_n λ̄_n^ℓ,  ℓ = 0..L-1  [C, L]
//   convolution form:  y = K * u + D u   (core/long_conv.h, by FFT)
//   recurrent form:    h_t = λ̄ h_{t-1} + B̄ u_t,  y_t = 2 Re Σ_n C_n h_{t,n} + D u_t  (the complex
//                      scan, core/scan.h; the decoding state is h [B, C P, 2])
//   out = out_proj(GELU(y))
// As in the paper's minimal S4D code, B is fixed to 1 (C absorbs it), C ~ N(0, 1/2) per part,
// Re λ is stored as log(-Re λ) so that it stays negative. Deviation: the block's output is a
// C x C linear after GELU (the paper's code uses a 1x1 conv to 2C and a GLU).
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/ssm/diagonal_ssm.h"
#include "nn/ssm/ssm_block.h"

namespace tz::nn {

inline const Key<std::string> kS4dInit{"s4d_init", "lin", "the imaginary parts of λ: lin (S4D-Lin) or inv (S4D-Inv)"};

struct S4dOptions {
  int64_t dim = 0;     // C
  int64_t state = 16;  // N (P = N / 2 complex modes)
  double dt_min = 0.001, dt_max = 0.1;
  bool inverse = false;  // S4D-Inv instead of S4D-Lin
};
S4dOptions s4d_options(const ModelDims& dims, const Config& config);

class S4d : public SsmBlock {
 public:
  S4d(const S4dOptions& options, Generator& gen);
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The SSM alone (before GELU and out_proj), for tests. u [B, T, C].
  Tensor kernel(int64_t L) const;                                     // K [C, L]
  Tensor convolve(const Tensor& u) const override;                    // by the kernel and the long convolution
  Tensor recur(const Tensor& u, Tensor* h = nullptr) const override;  // by the scan; *h: initial, then final state

  S4dOptions options;
  std::shared_ptr<DiagonalSsm> ssm;  // log_dt, A_log_re, A_im, C_re, C_im, D
};

}  // namespace tz::nn
