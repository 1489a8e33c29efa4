// Reduction kernels over one (merged) dim, on contiguous data viewed as [O, N, I]:
//   O = outer  (product of the dims before the reduced ones),
//   N = the reduced extent (product of the reduced dims; they must be adjacent),
//   I = inner  (product of the dims after them).
// Outputs are [O, I] (cumsum: [O, N, I]). The tensor layer (core/reduce.cpp) brings any
// input into this layout, copying only when the input is not already contiguous.
//
// Accumulation: f32 sums are accumulated in f64 (so a sum of 10^7 floats keeps ~7 good
// digits), in fixed blocks of N combined in a fixed order: the result does not depend on
// the thread count. i64 sums accumulate in i64 (wrapping on overflow, as C++ would not
// guarantee; do not sum huge counts).
//
// Instantiated for T = float, double (sum_forward and cumsum also for int64_t).
#pragma once

#include <cmath>
#include <cstdint>

namespace tz::kernels {

// out[o, i] = scale * sum_n inp[o, n, i]. (mean is scale = 1/N.)
template <class T>
void sum_forward(T* out, const T* inp, int64_t O, int64_t N, int64_t I, double scale = 1.0);
template <class T>
void sum_forward_ref(T* out, const T* inp, int64_t O, int64_t N, int64_t I, double scale = 1.0);
// Backward of sum/mean: dinp[o, n, i] += scale * dout[o, i].
template <class T>
void sum_backward(T* dinp, const T* dout, int64_t O, int64_t N, int64_t I, double scale = 1.0);

// out[o, i] = sum_n (x - mean)^2 / (N - correction); two passes, f64 accumulation.
// N - correction <= 0 gives NaN or Inf (as PyTorch does), never an exception here.
template <class T>
void var_forward(T* out, const T* inp, int64_t O, int64_t N, int64_t I, int64_t correction);
template <class T>
void var_forward_ref(T* out, const T* inp, int64_t O, int64_t N, int64_t I, int64_t correction);
// dinp += dout * 2 (x - mean) / (N - correction); the mean is recomputed.
template <class T>
void var_backward(T* dinp, const T* dout, const T* inp, int64_t O, int64_t N, int64_t I, int64_t correction);

// out[o, i] = max_n (or min_n) inp[o, n, i], idx = its first position. NaN counts as
// larger than every number for max (smaller for min), so a NaN propagates, like PyTorch.
// N must be >= 1. This loop is plain already; it is its own reference.
template <class T>
void max_forward(T* out, int64_t* idx, const T* inp, int64_t O, int64_t N, int64_t I, bool is_max);
// dinp[o, idx[o, i], i] += dout[o, i]: the gradient of max/min goes to the first extremum.
template <class T>
void index_backward(T* dinp, const T* dout, const int64_t* idx, int64_t O, int64_t N, int64_t I);

// out[o, i] = m + log sum_n exp(inp - m), m = max_n inp (the max-subtraction keeps exp
// from overflowing). All -inf gives -inf; a +inf gives +inf; N = 0 gives -inf.
template <class T>
void logsumexp_forward(T* out, const T* inp, int64_t O, int64_t N, int64_t I);
template <class T>
void logsumexp_forward_ref(T* out, const T* inp, int64_t O, int64_t N, int64_t I);
// dinp += dout * exp(inp - out): the softmax of the row.
template <class T>
void logsumexp_backward(T* dinp, const T* dout, const T* out, const T* inp, int64_t O, int64_t N, int64_t I);

// out[o, n, i] = sum_{k <= n} inp[o, k, i], running sum in f64 (i64 for i64). Plain loop.
template <class T>
void cumsum_forward(T* out, const T* inp, int64_t O, int64_t N, int64_t I);
// dinp[o, n, i] += sum_{k >= n} dout[o, k, i]: the reverse running sum.
template <class T>
void cumsum_backward(T* dinp, const T* dout, int64_t O, int64_t N, int64_t I);

// ---- row helpers over one contiguous row (shared by softmax, norms, cross-entropy) ---------
// Eight independent accumulators: the compiler turns these loops into vector code without
// -ffast-math, and the summation order is fixed (deterministic). They are not the plain
// references: those are the single-accumulator loops in each *_ref kernel.

// sum of x[0..n) accumulated in A (f64 for floating T).
template <class T, class A = double>
inline A row_sum(const T* x, int64_t n) {
  A acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += A(x[i + k]);
  A s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += A(x[i]);
  return s;
}

// sum of a[i] * b[i] in f64.
template <class T>
inline double row_dot(const T* a, const T* b, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += double(a[i + k]) * double(b[i + k]);
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

// sum of (x - mean)^2 in f64.
template <class T>
inline double row_sqdev(const T* x, int64_t n, double mean) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) {
      double d = double(x[i + k]) - mean;
      acc[k] += d * d;
    }
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) {
    double d = double(x[i]) - mean;
    s += d * d;
  }
  return s;
}

// max of x[0..n), n >= 1. NaNs are skipped unless x[0] is one; callers that must propagate
// NaN get it anyway through the exp/sum that follows.
template <class T>
inline T row_max(const T* x, int64_t n) {
  T acc[8];
  for (int k = 0; k < 8; ++k) acc[k] = x[0];
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] = x[i + k] > acc[k] ? x[i + k] : acc[k];
  T m = acc[0];
  for (int k = 1; k < 8; ++k) m = acc[k] > m ? acc[k] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// sum of exp(x - m) in f64 (exp evaluated in T).
template <class T>
inline double row_sum_exp(const T* x, int64_t n, T m) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(std::exp(x[i] - m));
  return s;
}

}  // namespace tz::kernels
