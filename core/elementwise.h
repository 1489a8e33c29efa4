// Elementwise ops at the tensor level (not differentiable; autograd/ops_elementwise.cpp wraps
// them): NumPy broadcasting, any strides (including expanded stride-0 views), dtype checks,
// threads. Every result is a fresh contiguous tensor. The per-run work is done by the
// kernels in core/kernels/elementwise.h.
//
// dtypes: both operands of a binary op must have the same dtype. f32 and f64 work
// everywhere; i64 works for add, sub, mul, maximum, minimum, the comparisons, the scalar
// add/mul (integral scalars), neg, abs, where, masked_fill, tril and triu.
#pragma once

#include "core/kernels/elementwise.h"
#include "core/tensor.h"

namespace tz::core {

using kernels::BinaryOp;
using kernels::UnaryOp;

// y = f(x).
Tensor unary(UnaryOp op, const Tensor& x);
// dx = dy * f'(x), given the forward's input x and output y (same shape; dy may be any view
// of that shape, e.g. an expanded gradient).
Tensor unary_backward(UnaryOp op, const Tensor& y, const Tensor& x, const Tensor& dy);

// out = a (op) b with broadcasting. Comparisons give 1/0 in the operands' dtype.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// out = x (op) s; `name` is used in error messages ("add_scalar").
Tensor binary_scalar(BinaryOp op, const Tensor& x, double s, const char* name);

inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
inline Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
inline Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }

// dst += src in place (dst any strides, src broadcastable to it, one dtype): a gradient
// accumulated into a view of a larger one, with no temporary.
void add_(const Tensor& dst, const Tensor& src);

// min(max(x, lo), hi) (floating dtypes). NaN stays NaN.
Tensor clamp(const Tensor& x, double lo, double hi);
// g where lo <= x <= hi, else 0 (clamp's backward; g has x's shape, any strides).
Tensor clamp_backward(const Tensor& x, double lo, double hi, const Tensor& g);

// cond ? a : b, three-way broadcast. cond may have any dtype (nonzero = true); a and b share
// one dtype, which the result has.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with `value` where mask != 0; mask (any dtype) broadcasts to x's shape.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// Zero above (tril) / below (triu) the k-th diagonal of the last two dims: tril keeps
// x[..., i, j] where j - i <= k, triu where j - i >= k.
Tensor tril(const Tensor& x, int64_t k = 0);
Tensor triu(const Tensor& x, int64_t k = 0);

// t's strides seen from a broadcast shape `out` (0 along broadcast and missing dims).
Shape broadcast_strides(const Tensor& t, const Shape& out);

}  // namespace tz::core
