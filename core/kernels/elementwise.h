// Elementwise kernels over contiguous runs: unary maps y = f(x), their derivatives
// dx = dy * f'(x), binary maps out = a (op) b, and clamp.
//
// Shape letter: N = the number of elements in the run. Parameter order: outputs, saved
// values, inputs, sizes. Each fast kernel (f32: AVX2+FMA when tz::simd_enabled()) has a
// plain scalar reference xxx_ref beside it; f64 and i64 always take the reference.
// The tensor layer (core/elementwise.h) handles shapes, broadcasting and strides.
#pragma once

#include <cstdint>

namespace tz::kernels {

enum class UnaryOp : uint8_t {
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  abs,
  sin,
  cos,
  tanh,
  sigmoid,
  log_sigmoid,
  softplus,
  relu,
  gelu,
  gelu_tanh,
  silu,
};
const char* unary_name(UnaryOp op);

enum class BinaryOp : uint8_t {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  // comparisons: 1 where true, 0 where false (same dtype as the inputs; not differentiable)
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
};
const char* binary_name(BinaryOp op);

// ---- unary: y[i] = f(x[i]) ---------------------------------------------------------------
template <class T>
void unary_ref(UnaryOp op, T* y, const T* x, int64_t N);
void unary(UnaryOp op, float* y, const float* x, int64_t N);
void unary(UnaryOp op, double* y, const double* x, int64_t N);

// dx[i] = dy[i] * f'(x[i]). Some derivatives read the saved output y (exp, sqrt, rsqrt, tanh,
// sigmoid); the others read x. Both pointers are always given. Writes dx (no +=): the
// autograd layer always passes a fresh buffer and the engine does the accumulation.
template <class T>
void unary_backward_ref(UnaryOp op, T* dx, const T* y, const T* x, const T* dy, int64_t N);
void unary_backward(UnaryOp op, float* dx, const float* y, const float* x, const float* dy, int64_t N);
void unary_backward(UnaryOp op, double* dx, const double* y, const double* x, const double* dy, int64_t N);

// ---- binary: out[i] = a[i] (op) b[i] ----------------------------------------------------
// Three layouts: both operands runs; b one scalar (x + s, broadcasting along the run);
// a one scalar. T = float, double or int64_t (i64: add, sub, mul, maximum, minimum and
// comparisons only; the tensor layer checks that).
template <class T>
void binary_ref(BinaryOp op, T* out, const T* a, const T* b, int64_t N);
template <class T>
void binary_scalar_b_ref(BinaryOp op, T* out, const T* a, T b, int64_t N);
template <class T>
void binary_scalar_a_ref(BinaryOp op, T* out, T a, const T* b, int64_t N);
template <class T>
void binary(BinaryOp op, T* out, const T* a, const T* b, int64_t N);
template <class T>
void binary_scalar_b(BinaryOp op, T* out, const T* a, T b, int64_t N);
template <class T>
void binary_scalar_a(BinaryOp op, T* out, T a, const T* b, int64_t N);

// The scalar definition of one binary op (also used by the strided loops).
template <class T>
T binary_one(BinaryOp op, T a, T b);

// ---- clamp: y[i] = min(max(x[i], lo), hi); NaN stays NaN ---------------------------------
template <class T>
void clamp_ref(T* y, const T* x, T lo, T hi, int64_t N);
template <class T>
void clamp(T* y, const T* x, T lo, T hi, int64_t N);

// ---- SIMD versions (elementwise_simd.inl: 8 lanes in avx2, 16 in avx512, equal values) ---
// They return false when an op has no vector version (the caller then runs the reference).
namespace avx2 {  // call only when tz::simd_enabled()
bool unary(UnaryOp op, float* y, const float* x, int64_t N);
bool unary_backward(UnaryOp op, float* dx, const float* y, const float* x, const float* dy, int64_t N);
bool binary(BinaryOp op, float* out, const float* a, const float* b, int64_t N);
bool binary_scalar_b(BinaryOp op, float* out, const float* a, float b, int64_t N);
bool binary_scalar_a(BinaryOp op, float* out, float a, const float* b, int64_t N);
void clamp(float* y, const float* x, float lo, float hi, int64_t N);
}  // namespace avx2
namespace avx512 {  // call only when tz::simd_level() is avx512
bool unary(UnaryOp op, float* y, const float* x, int64_t N);
bool unary_backward(UnaryOp op, float* dx, const float* y, const float* x, const float* dy, int64_t N);
bool binary(BinaryOp op, float* out, const float* a, const float* b, int64_t N);
bool binary_scalar_b(BinaryOp op, float* out, const float* a, float b, int64_t N);
bool binary_scalar_a(BinaryOp op, float* out, float a, const float* b, int64_t N);
void clamp(float* y, const float* x, float lo, float hi, int64_t N);
}  // namespace avx512

}  // namespace tz::kernels
