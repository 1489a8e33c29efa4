// LSSL, the linear state-space layer. "Combining Recurrent, Convolutional, and Continuous-time
// Models with Linear State-Space Layers", Gu, Johnson, Goel, Saab, Dao, Rudra and Ré 2021,
// arXiv:2110.13985.
//
// Shape letters: B batch, T time (L the kernel length), C model width (one SSM per channel),
// N state size.
// Per channel c, a continuous system with a dense HiPPO-LegS matrix (core/kernels/ssm_kernels.h):
//   x'(t) = A x(t) + B u(t),  y(t) = C_c x(t) + D_c u(t)
//   bilinear with step Δ_c:  Ā = (I - Δ/2 A)^{-1}(I + Δ/2 A),  B̄ = (I - Δ/2 A)^{-1} Δ B
//   recurrent form:   x_t = Ā x_{t-1} + B̄ u_t,  y_t = C x_t + D u_t   (a dense N x N step)
//   convolution form: y = K * u + D u,  K = (C B̄, C Ā B̄, ..., C Ā^{L-1} B̄)   (the Krylov kernel,
//                     C times the Krylov vectors V_l = Ā^l B̄ [C, L, N]; long conv by FFT)
//   out = out_proj(GELU(y))
// This is the paper's LSSL-f: A (HiPPO-LegS) and Δ (log-uniform in [ssm_dt_min, ssm_dt_max],
// a buffer) stay fixed, C ~ N(0, 1/N) and D ~ N(0, 1) are trained. Because Δ is a time step,
// the layer is a continuous-time model: sampling the same signal twice as often with Δ / 2
// gives (up to the discretisation error) the same output.
// The Krylov vectors are computed in f64 from the buffer and cached per length.
#pragma once

#include <vector>

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/ssm/ssm_block.h"

namespace tz::nn {

struct LsslOptions {
  int64_t dim = 0;     // C
  int64_t state = 16;  // N
  double dt_min = 0.001, dt_max = 0.1;
};
LsslOptions lssl_options(const ModelDims& dims, const Config& config);

class Lssl : public SsmBlock {
 public:
  Lssl(const LsslOptions& options, Generator& gen);
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The SSM alone (before GELU and out_proj), for tests. u [B, T, C].
  Tensor kernel(int64_t L) const;                                     // K [C, L]
  Tensor convolve(const Tensor& u) const override;                    // K * u + D u by the long convolution
  Tensor recur(const Tensor& u, Tensor* x = nullptr) const override;  // the dense recurrence; *x: initial, then final

  LsslOptions options;
  Tensor log_dt;  // [C], a buffer (LSSL-f)
  Tensor C, D;    // [C, N], [C]

 private:
  struct Discrete {
    std::vector<double> log_dt;  // the buffer the rest was computed from
    std::vector<double> Ab, Bb;  // [C, N, N], [C, N]
    int64_t L = 0;
    std::vector<double> V;  // Krylov vectors [C, L, N]
  };
  const Discrete& discrete(int64_t L) const;  // Ā, B̄, and the Krylov vectors of length L > 0
  mutable Discrete cache_;
};

}  // namespace tz::nn
