// Softmax and log-softmax over the last dim, forward and backward. Shapes: the input is
// N contiguous rows of C values (N = product of the leading dims, C = the last dim).
//
//   softmax(x)_c     = exp(x_c - m) / sum_k exp(x_k - m),   m = max_k x_k
//   log_softmax(x)_c = x_c - m - log sum_k exp(x_k - m)
// Subtracting the row max m changes nothing mathematically but keeps exp from overflowing
// (the largest term is exp(0) = 1). Sums run in f64.
//   softmax backward:     dx_c += y_c (dy_c - sum_k dy_k y_k)           (y = softmax)
//   log_softmax backward: dx_c += dy_c - exp(y_c) sum_k dy_k            (y = log_softmax)
// A row that is all -inf (or holds +inf or NaN) gives NaN, as in PyTorch.
//
// f32 takes an AVX2 path (vectorised exp from vecmath.h) when tz::simd_enabled(); f64 and
// the *_ref kernels are plain loops. T = float or double.
#pragma once

#include <cstdint>

namespace tz::kernels {

template <class T>
void softmax_forward(T* out, const T* inp, int64_t N, int64_t C);
template <class T>
void softmax_forward_ref(T* out, const T* inp, int64_t N, int64_t C);
template <class T>
void softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C);
template <class T>
void softmax_backward_ref(T* dinp, const T* dout, const T* out, int64_t N, int64_t C);

template <class T>
void log_softmax_forward(T* out, const T* inp, int64_t N, int64_t C);
template <class T>
void log_softmax_forward_ref(T* out, const T* inp, int64_t N, int64_t C);
template <class T>
void log_softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C);
template <class T>
void log_softmax_backward_ref(T* dinp, const T* dout, const T* out, int64_t N, int64_t C);

// Row helpers of the AVX2 path (softmax_avx2.cpp; call only when tz::simd_enabled()).
// Shared with cross_entropy.cpp. C >= 1.
namespace avx2 {
float row_max(const float* x, int64_t C);                // may skip NaN: the exp sum propagates it
double row_sum_exp(const float* x, int64_t C, float m);  // sum exp(x - m), f64
// y = exp(x - m) and returns sum y (f64); y may alias x.
double row_exp_store(float* y, const float* x, int64_t C, float m);
void row_scale(float* y, int64_t C, float s);                          // y *= s
void row_sub2(float* y, const float* x, int64_t C, float a, float b);  // y = (x - a) - b
// d += a * exp(x - b)   (softmax from a known log-normaliser b, times a)
void row_axpy_exp(float* d, const float* x, int64_t C, float a, float b);
}  // namespace avx2

}  // namespace tz::kernels
