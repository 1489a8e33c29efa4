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
struct LongConvGrads {
  Tensor du, dk, dD;  // dD undefined when D is
};
// g: dL/dy for the same inputs.
LongConvGrads long_conv_backward(const Tensor& g, const Tensor& u, const Tensor& k, const Tensor& D,
                                 const LongConvOptions& o = {});

}  // namespace core
}  // namespace tz
