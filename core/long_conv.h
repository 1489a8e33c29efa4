// Tensor-level causal long convolution (not differentiable; autograd/ops_long_conv.cpp pairs
// the forward with its backward): shape and dtype checks, then the kernels of
// core/kernels/long_conv.h (math there).
//   u [B, C, L], k [C, L], D [C] or undefined -> y [B, C, L]
//   y[b, c, t] = sum_{s <= t} k[c, t - s] u[b, c, s] + D[c] u[b, c, t]
#pragma once

#include "core/tensor.h"

namespace tz {

struct LongConvOptions {
  bool reference = false;  // the direct O(L^2) sums (tests; the FFT path otherwise)
};

namespace core {

Tensor long_conv(const Tensor& u, const Tensor& k, const Tensor& D, const LongConvOptions& o = {});
// The outputs at the last T of L positions by direct sums, O(T L) (a decoding step), with the
// history time-major: u [B, L, C], k [L, C], D [C] or undefined -> y [B, T, C],
//   y[b, i, c] = sum_{s <= t} k[t - s, c] u[b, s, c] + D[c] u[b, t, c],  t = L - T + i.
// Not differentiable (decoding runs without gradients).
Tensor long_conv_tail(const Tensor& u, const Tensor& k, const Tensor& D, int64_t T);
// Up to this many new positions the tail's direct sums cost less than transforming the whole
// history (about 15 log2(2L) positions break even); a decoding step is one.
inline constexpr int64_t kLongConvTailSteps = 16;
struct LongConvGrads {
  Tensor du, dk, dD;  // dD undefined when D is
};
// g: dL/dy for the same inputs.
LongConvGrads long_conv_backward(const Tensor& g, const Tensor& u, const Tensor& k, const Tensor& D,
                                 const LongConvOptions& o = {});

}  // namespace core
}  // namespace tz
