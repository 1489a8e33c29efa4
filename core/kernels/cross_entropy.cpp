// Cross-entropy kernels; math and shapes in cross_entropy.h. Rows run in parallel; f32
// uses the AVX2 row helpers of softmax_avx2.cpp when tz::simd_enabled().
#include "core/kernels/cross_entropy.h"

#include <cmath>
#include <type_traits>

#include "core/kernels/reduce.h"   // row_max, row_sum_exp
#include "core/kernels/softmax.h"  // avx2 row helpers
#include "core/parallel.h"

namespace tz::kernels {

namespace {
constexpr int64_t kExpCost = 16;

// log sum exp of one contiguous row (V >= 1).
template <class T>
T row_lse(const T* x, int64_t V) {
  if constexpr (std::is_same_v<T, float>) {
    if (simd_enabled()) {
      float m = avx2::row_max(x, V);
      if (std::isinf(m)) return m;  // all -inf: -inf; a +inf: +inf (loss inf or NaN)
      return float(double(m) + std::log(avx2::row_sum_exp(x, V, m)));
    }
  }
  T m = row_max<T>(x, V);
  if (std::isinf(m)) return m;
  return T(double(m) + std::log(row_sum_exp<T>(x, V, m)));
}
}  // namespace

template <class T>
void cross_entropy_forward(T* losses, T* lse, const T* logits, const int64_t* targets, int64_t N, int64_t V,
                           int64_t ignore_index) {
  parallel_for(N, V * kExpCost, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const T* x = logits + n * V;
      T l = row_lse(x, V);
      lse[n] = l;
      losses[n] = targets[n] == ignore_index ? T(0) : l - x[targets[n]];
    }
  });
}

template <class T>
void cross_entropy_forward_ref(T* losses, T* lse, const T* logits, const int64_t* targets, int64_t N, int64_t V,
                               int64_t ignore_index) {
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    double m = -INFINITY, s = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, double(x[v]));
    for (int64_t v = 0; v < V; ++v) s += std::exp(double(x[v]) - m);
    double l = m + std::log(s);
    lse[n] = T(l);
    losses[n] = targets[n] == ignore_index ? T(0) : T(l - double(x[targets[n]]));
  }
}

template <class T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int64_t* targets, double scale, int64_t N,
                            int64_t V, int64_t ignore_index) {
  parallel_for(N, V * kExpCost, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      int64_t t = targets[n];
      if (t == ignore_index) continue;
      const T* x = logits + n * V;
      T* d = dlogits + n * V;
      T s = T(scale), l = lse[n];
      // term 1: scale * softmax = scale * exp(x - lse)
      bool done = false;
      if constexpr (std::is_same_v<T, float>) {
        if (simd_enabled()) {
          avx2::row_axpy_exp(d, x, V, s, l);
          done = true;
        }
      }
      if (!done)
        for (int64_t v = 0; v < V; ++v) d[v] += s * std::exp(x[v] - l);
      // term 2: - scale at the target
      d[t] -= s;
    }
  });
}

template <class T>
void cross_entropy_backward_ref(T* dlogits, const T* logits, const T* lse, const int64_t* targets, double scale,
                                int64_t N, int64_t V, int64_t ignore_index) {
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore_index) continue;
    for (int64_t v = 0; v < V; ++v) {
      double p = std::exp(double(logits[n * V + v]) - double(lse[n]));
      dlogits[n * V + v] += T(scale * (p - (v == targets[n] ? 1.0 : 0.0)));
    }
  }
}

#define TZ_INST(T)                                                                                                    \
  template void cross_entropy_forward<T>(T*, T*, const T*, const int64_t*, int64_t, int64_t, int64_t);                \
  template void cross_entropy_forward_ref<T>(T*, T*, const T*, const int64_t*, int64_t, int64_t, int64_t);            \
  template void cross_entropy_backward<T>(T*, const T*, const T*, const int64_t*, double, int64_t, int64_t, int64_t); \
  template void cross_entropy_backward_ref<T>(T*, const T*, const T*, const int64_t*, double, int64_t, int64_t,       \
                                              int64_t);
TZ_INST(float)
TZ_INST(double)
#undef TZ_INST

}  // namespace tz::kernels
