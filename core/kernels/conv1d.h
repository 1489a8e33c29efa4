// Depthwise causal 1-D convolution over time, forward and backward.
//
// Shape letters: B = batch, T = time steps, C = channels, K = kernel width.
//   x [B, T, C], weight [C, K], bias [C] (may be null), y [B, T, C], all contiguous:
//   y[b, t, c] = bias[c] + sum_k weight[c, k] * x[b, t - K + 1 + k, c]
// with x[b, s, c] = 0 for s < 0 (zero padding on the left), so y at time t only sees
// x at times <= t. Each channel has its own filter (depthwise: no mixing across c).
// weight[c, K-1] multiplies the current step, weight[c, 0] the step K-1 in the past.
//
// Backward (all accumulate with +=; pass null to skip a gradient):
//   dx[b, s, c]    += sum_k weight[c, k] * dy[b, s + K - 1 - k, c]   (terms with time < T)
//   dweight[c, k]  += sum_{b, t} dy[b, t, c] * x[b, t - K + 1 + k, c]
//   dbias[c]       += sum_{b, t} dy[b, t, c]
#pragma once

#include <cstdint>

namespace tz::kernels {

template <class Real>
void conv1d_causal_forward(Real* y, const Real* x, const Real* weight, const Real* bias, int64_t B, int64_t T,
                           int64_t C, int64_t K);
template <class Real>
void conv1d_causal_forward_ref(Real* y, const Real* x, const Real* weight, const Real* bias, int64_t B, int64_t T,
                               int64_t C, int64_t K);

template <class Real>
void conv1d_causal_backward(Real* dx, Real* dweight, Real* dbias, const Real* dy, const Real* x, const Real* weight,
                            int64_t B, int64_t T, int64_t C, int64_t K);
template <class Real>
void conv1d_causal_backward_ref(Real* dx, Real* dweight, Real* dbias, const Real* dy, const Real* x, const Real* weight,
                                int64_t B, int64_t T, int64_t C, int64_t K);

}  // namespace tz::kernels
