// Tensor-level reductions (not differentiable; autograd/ops_reduce.cpp wraps them): shape
// checks, dtype dispatch and bringing any input into the [O, N, I] layout of
// core/kernels/reduce.h. Contiguous inputs reduced over adjacent dims are never copied;
// other inputs are copied once (reduced dims moved last when they are not adjacent).
//
// Dims may be negative (counted from the end). A 0-d tensor is treated as having one dim
// of size 1, so dim 0 / -1 work on it, like PyTorch.
#pragma once

#include "core/tensor.h"

namespace tz::core {

// Sum over `dims` ({} = all dims). f32, f64, i64; the result keeps the input dtype.
Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
// Mean over `dims` ({} = all). f32/f64. Empty reductions give NaN (0/0).
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
// Variance over one dim with `correction` (1 = unbiased). N - correction <= 0 gives NaN/Inf.
Tensor var(const Tensor& x, int64_t dim, int64_t correction = 1, bool keepdim = false);

struct ReduceWithIndices {
  Tensor values;
  Tensor indices;  // i64, position of the first extremum along dim
};
ReduceWithIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
ReduceWithIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// log sum exp over one dim, max-subtracted (no overflow for large inputs).
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);
// Inclusive prefix sum over one dim (f32/f64/i64; f32 runs in an f64 accumulator).
Tensor cumsum(const Tensor& x, int64_t dim);
// Sums x over the dims it was broadcast along, down to `shape` (leading extra dims and dims
// where `shape` has 1). `shape` must broadcast to x's shape. Keeps the dtype.
Tensor sum_to(const Tensor& x, const Shape& shape);
// The dims sum_to reduces (keepdim-style, in x's numbering).
Shape sum_to_dims(const Shape& from, const Shape& to);

// ---- backward helpers (gradients for the autograd wrappers; each returns a fresh tensor
// of the input's shape and dtype) ------------------------------------------------------
// sum/mean: spreads g (the output's shape) back over the reduced dims, times `scale`.
Tensor sum_backward(const Tensor& g, const Shape& in_shape, const Shape& dims, bool keepdim, double scale);
Tensor var_backward(const Tensor& g, const Tensor& x, int64_t dim, int64_t correction, bool keepdim);
// max/min: g goes to the first extremum recorded in `indices`.
Tensor index_backward(const Tensor& g, const Tensor& indices, const Shape& in_shape, int64_t dim, bool keepdim);
Tensor logsumexp_backward(const Tensor& g, const Tensor& out, const Tensor& x, int64_t dim, bool keepdim);
Tensor cumsum_backward(const Tensor& g, int64_t dim);

}  // namespace tz::core
