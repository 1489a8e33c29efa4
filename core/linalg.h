// Matrix products at the tensor level (not differentiable; autograd/ops_linalg.cpp wraps
// them): shape checks, NumPy-style batch broadcasting, dtype dispatch, and handing strided
// inputs to the GEMM kernel (core/kernels/gemm.h) without copying when a transpose flag
// and a leading dimension can describe their layout.
#pragma once

#include "core/tensor.h"

namespace tz::core {

// NumPy matmul: [..., M, K] @ [..., K, N] -> [..., M, N], with the batch dims ("...")
// broadcast against each other. A 1-D lhs [K] acts as [1, K] and a 1-D rhs [K] as [K, 1];
// the added dim is removed from the result (so vector @ vector is a 0-d scalar).
// f32 or f64, both operands the same dtype. The result is a fresh contiguous tensor.
Tensor matmul(const Tensor& a, const Tensor& b);

// y = x W^T + bias, x [..., in], weight [out, in], bias [out] (optional) -> [..., out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace tz::core
