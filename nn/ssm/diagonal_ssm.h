// The diagonal SSM of S4D (nn/ssm/s4d.h: equations, initialisation and shape letters there) as
// a bare module, without the block around it: the kernel, its FFT long convolution and its
// recurrence (nn/ssm/diagonal.h), for S4D itself and the layers that use a diagonal SSM inside
// a larger block (H3's SSM_diag, the GSS layer's DSS-style SSM). Per channel c and complex mode
// n (P = N / 2, S4D-Lin or S4D-Inv init):
//   λ̄_n = e^{Δ λ_n},  B̄_n = (λ̄_n - 1) / λ_n,  K_ℓ = 2 Re Σ_n C_n B̄_n λ̄_n^ℓ     [C, L]
//   conv form y = K * u + D u;  recurrent form h_t = λ̄ h_{t-1} + B̄ u_t, y_t = 2 Re C h_t + D u_t
#pragma once

#include "core/random.h"
#include "nn/module.h"

namespace tz::nn {

struct DiagonalSsmOptions {
  int64_t channels = 0;  // C
  int64_t state = 16;    // N (even)
  double dt_min = 0.001, dt_max = 0.1;
  bool skip = true;      // the D u term
  bool inverse = false;  // S4D-Inv instead of S4D-Lin
};

class DiagonalSsm : public Module {
 public:
  DiagonalSsm(const DiagonalSsmOptions& options, Generator& gen);
  std::string describe() const override;
  Tensor kernel(int64_t L) const;  // K [C, L]
  // u [B, T, C]. convolve: by the kernel and the FFT long convolution (direct: the O(L^2) sums).
  Tensor convolve(const Tensor& u, bool direct = false) const;
  // By the complex scan; *h [B, C P, 2]: the initial state (undefined = zeros), then the final.
  Tensor recur(const Tensor& u, Tensor* h = nullptr) const;

  DiagonalSsmOptions options;
  Tensor log_dt, A_log_re, A_im, C_re, C_im, D;  // [C], [C, P] x 4, [C] (undefined without skip)

 private:
  struct Discrete {
    Tensor dA_re, dA_im, Ab_re, Ab_im, Bb_re, Bb_im;  // [C, P] each
  };
  Discrete discretise() const;
};

}  // namespace tz::nn
