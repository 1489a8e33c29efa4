// The causal long convolution as a differentiable op (autograd/ops_long_conv.cpp; tensor level in
// core/long_conv.h, kernels and math in core/kernels/long_conv.h).
//   u [B, C, L], k [C, L], D [C] or undefined -> y [B, C, L]
//   y[b, c, t] = sum_{s <= t} k[c, t - s] u[b, c, s] + D[c] u[b, c, t]
#pragma once

#include "core/long_conv.h"
#include "core/tensor.h"

namespace tz {

// By FFT (zero-padded to a power of two >= 2L); options.reference: the direct O(L^2) sums.
Tensor long_conv(const Tensor& u, const Tensor& k, const Tensor& D = Tensor(), const LongConvOptions& options = {});
// The same sum written with plain differentiable ops (a [L, L] Toeplitz matrix per channel
// gathered from k, masked below the diagonal, then a batched matmul): the reference.
Tensor long_conv_composite(const Tensor& u, const Tensor& k, const Tensor& D = Tensor());

}  // namespace tz
