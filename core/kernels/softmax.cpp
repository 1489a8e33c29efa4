// Softmax / log-softmax kernels; math and shapes in softmax.h. Rows run in parallel.
#include "core/kernels/softmax.h"

#include <cmath>
#include <type_traits>

#include "core/kernels/reduce.h"  // row_sum, row_max, row_sum_exp, row_dot
#include "core/parallel.h"

namespace tz::kernels {

namespace {
// f32 with the AVX2 kernels available and switched on.
template <class T>
bool use_avx2() {
  return std::is_same_v<T, float> && simd_enabled();
}

constexpr int64_t kExpCost = 16;  // rough cost of one exp, for parallel_for's grain
}  // namespace

// ---- softmax -----------------------------------------------------------------------------

template <class T>
void softmax_forward(T* out, const T* inp, int64_t N, int64_t C) {
  if (C == 0) return;
  parallel_for(N, C * kExpCost, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* x = inp + r * C;
      T* y = out + r * C;
      if constexpr (std::is_same_v<T, float>) {
        if (use_avx2<T>()) {
          float m = avx2::row_max(x, C);
          double s = avx2::row_exp_store(y, x, C, m);
          avx2::row_scale(y, C, float(1.0 / s));
          continue;
        }
      }
      T m = row_max<T>(x, C);
      double s = 0;
      for (int64_t c = 0; c < C; ++c) {
        y[c] = std::exp(x[c] - m);
        s += double(y[c]);
      }
      T inv = T(1.0 / s);
      for (int64_t c = 0; c < C; ++c) y[c] *= inv;
    }
  });
}

template <class T>
void softmax_forward_ref(T* out, const T* inp, int64_t N, int64_t C) {
  for (int64_t r = 0; r < N; ++r) {
    const T* x = inp + r * C;
    double m = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, double(x[c]));
    for (int64_t c = 0; c < C; ++c) s += std::exp(double(x[c]) - m);
    for (int64_t c = 0; c < C; ++c) out[r * C + c] = T(std::exp(double(x[c]) - m) / s);
  }
}

template <class T>
void softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C) {
  parallel_for(N, 4 * C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* dy = dout + r * C;
      const T* y = out + r * C;
      T* dx = dinp + r * C;
      T dot = T(row_dot(dy, y, C));
      for (int64_t c = 0; c < C; ++c) dx[c] += y[c] * (dy[c] - dot);
    }
  });
}

template <class T>
void softmax_backward_ref(T* dinp, const T* dout, const T* out, int64_t N, int64_t C) {
  for (int64_t r = 0; r < N; ++r) {
    double dot = 0;
    for (int64_t c = 0; c < C; ++c) dot += double(dout[r * C + c]) * double(out[r * C + c]);
    for (int64_t c = 0; c < C; ++c) dinp[r * C + c] += T(double(out[r * C + c]) * (double(dout[r * C + c]) - dot));
  }
}

// ---- log_softmax -------------------------------------------------------------------------

template <class T>
void log_softmax_forward(T* out, const T* inp, int64_t N, int64_t C) {
  if (C == 0) return;
  parallel_for(N, C * kExpCost, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* x = inp + r * C;
      T* y = out + r * C;
      if constexpr (std::is_same_v<T, float>) {
        if (use_avx2<T>()) {
          float m = avx2::row_max(x, C);
          double s = avx2::row_sum_exp(x, C, m);
          avx2::row_sub2(y, x, C, m, float(std::log(s)));
          continue;
        }
      }
      T m = row_max<T>(x, C);
      // (x - m) first: it is exact for the entries near the max (Sterbenz), which matter
      // most; folding m + log s into one shift would round it at the scale of |m|.
      T ls = T(std::log(row_sum_exp<T>(x, C, m)));
      for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - m) - ls;
    }
  });
}

template <class T>
void log_softmax_forward_ref(T* out, const T* inp, int64_t N, int64_t C) {
  for (int64_t r = 0; r < N; ++r) {
    const T* x = inp + r * C;
    double m = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, double(x[c]));
    for (int64_t c = 0; c < C; ++c) s += std::exp(double(x[c]) - m);
    for (int64_t c = 0; c < C; ++c) out[r * C + c] = T(double(x[c]) - m - std::log(s));
  }
}

template <class T>
void log_softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C) {
  parallel_for(N, C * kExpCost, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* dy = dout + r * C;
      const T* y = out + r * C;
      T* dx = dinp + r * C;
      T s = T(row_sum<T, double>(dy, C));
      for (int64_t c = 0; c < C; ++c) dx[c] += dy[c];
      if constexpr (std::is_same_v<T, float>) {
        if (use_avx2<T>()) {
          avx2::row_axpy_exp(dx, y, C, -s, 0.0f);  // dx -= s * exp(y)
          continue;
        }
      }
      for (int64_t c = 0; c < C; ++c) dx[c] -= s * std::exp(y[c]);
    }
  });
}

template <class T>
void log_softmax_backward_ref(T* dinp, const T* dout, const T* out, int64_t N, int64_t C) {
  for (int64_t r = 0; r < N; ++r) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += double(dout[r * C + c]);
    for (int64_t c = 0; c < C; ++c)
      dinp[r * C + c] += T(double(dout[r * C + c]) - std::exp(double(out[r * C + c])) * s);
  }
}

#define TZ_INST(T)                                                                 \
  template void softmax_forward<T>(T*, const T*, int64_t, int64_t);                \
  template void softmax_forward_ref<T>(T*, const T*, int64_t, int64_t);            \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);     \
  template void softmax_backward_ref<T>(T*, const T*, const T*, int64_t, int64_t); \
  template void log_softmax_forward<T>(T*, const T*, int64_t, int64_t);            \
  template void log_softmax_forward_ref<T>(T*, const T*, int64_t, int64_t);        \
  template void log_softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t); \
  template void log_softmax_backward_ref<T>(T*, const T*, const T*, int64_t, int64_t);
TZ_INST(float)
TZ_INST(double)
#undef TZ_INST

}  // namespace tz::kernels
