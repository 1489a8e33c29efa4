// Pieces shared by the diagonal state-space layers (S4D, DSS): the Vandermonde kernel and the
// recurrent form by the complex scan, complex numbers kept as real pairs.
//
// Shape letters: B batch, T time, L kernel length, C channels, P complex modes per channel.
// Per channel c and mode n, with Δλ = dA (complex), B̄ and C̄ complex (C̄ undefined: 1):
//   kernel:     K_ℓ = Re Σ_n C̄_n B̄_n e^{ℓ Δλ_n},  ℓ = 0..L-1                         [C, L]
//   recurrence: h_t = e^{Δλ} h_{t-1} + B̄ u_t,  y_t = Re Σ_n C̄_n h_{t,n}   (core/scan.h)
// The two are the same causal convolution y = K * u: the recurrence's impulse response.
#pragma once

#include <complex>
#include <vector>

#include "core/tensor.h"

namespace tz::nn {

// K [C, L] from dA, W = C̄ B̄ ([C, P] or [P] each).
Tensor vandermonde_kernel(const Tensor& dA_re, const Tensor& dA_im, const Tensor& W_re, const Tensor& W_im, int64_t L);

struct DiagonalStep {
  Tensor a_re, a_im, b_re, b_im;  // e^{Δλ} and B̄ [C, P]
  Tensor c_re, c_im;              // C̄ [C, P], or undefined for C̄ = 1
};
// u [B, T, C] -> y [B, T, C] (without any skip term). h: the state [B, C P, 2] — when given and
// defined, the initial state; replaced by the final one.
Tensor diagonal_recur(const Tensor& u, const DiagonalStep& s, Tensor* h = nullptr);

// The eigenvalues of HiPPO-LegS's normal part A + P Pᵀ (size N, even): -1/2 + iω, the N / 2
// with ω > 0 in ascending order (core/kernels/ssm_kernels.h: nplr).
std::vector<std::complex<double>> legs_normal_modes(int64_t N);

}  // namespace tz::nn
