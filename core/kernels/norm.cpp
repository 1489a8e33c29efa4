// LayerNorm / RMSNorm kernels; math and shapes in norm.h. The fast kernels run rows in
// parallel with loops the compiler vectorizes (row sums use reduce.h's blocked helpers);
// the *_ref kernels are the same math as plain single-accumulator loops.
#include "core/kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/kernels/reduce.h"  // row_sum, row_sqdev, row_dot
#include "core/parallel.h"

namespace tz::kernels {

namespace {
constexpr int64_t kColBlock = 64;  // dweight/dbias columns owned by one work item

// dweight[c] += sum_n dy[n,c] xhat[n,c] and dbias[c] += sum_n dy[n,c], xhat recomputed from
// (x - mean) rstd (mean = nullptr for RMSNorm). Work split over column blocks: each column
// is summed over all rows by one thread in a fixed order (deterministic).
template <class T>
void param_grads(T* dweight, T* dbias, const T* dout, const T* inp, const T* mean, const T* rstd, int64_t N,
                 int64_t C) {
  if (!dweight && !dbias) return;
  int64_t nb = (C + kColBlock - 1) / kColBlock;
  parallel_for(nb, N * kColBlock * 3, [&](int64_t b0, int64_t b1) {
    double dw[kColBlock], db[kColBlock];
    for (int64_t b = b0; b < b1; ++b) {
      int64_t c0 = b * kColBlock, m = std::min(kColBlock, C - c0);
      std::fill(dw, dw + m, 0.0);
      std::fill(db, db + m, 0.0);
      for (int64_t n = 0; n < N; ++n) {
        const T* dy = dout + n * C + c0;
        const T* x = inp + n * C + c0;
        T mu = mean ? mean[n] : T(0), r = rstd[n];
        for (int64_t j = 0; j < m; ++j) {
          dw[j] += double(dy[j]) * double((x[j] - mu) * r);
          db[j] += double(dy[j]);
        }
      }
      for (int64_t j = 0; j < m; ++j) {
        if (dweight) dweight[c0 + j] += T(dw[j]);
        if (dbias) dbias[c0 + j] += T(db[j]);
      }
    }
  });
}
}  // namespace

// ---- LayerNorm ---------------------------------------------------------------------------

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias, int64_t N, int64_t C,
                       double eps) {
  parallel_for(N, 6 * C, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const T* x = inp + n * C;
      T* y = out + n * C;
      // Two passes in f64: var = mean((x - mean)^2) cannot go negative, unlike
      // E[x^2] - E[x]^2, which cancels catastrophically when |mean| >> std.
      double mu = C > 0 ? row_sum<T, double>(x, C) / double(C) : 0.0;
      double var = C > 0 ? row_sqdev<T>(x, C, mu) / double(C) : 0.0;
      T m = T(mu), r = T(1.0 / std::sqrt(var + eps));
      mean[n] = m;
      rstd[n] = r;
      if (weight && bias) {
        for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - m) * r * weight[c] + bias[c];
      } else {
        for (int64_t c = 0; c < C; ++c) {
          T v = (x[c] - m) * r;
          if (weight) v *= weight[c];
          if (bias) v += bias[c];
          y[c] = v;
        }
      }
    }
  });
}

template <class T>
void layernorm_forward_ref(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias, int64_t N, int64_t C,
                           double eps) {
  for (int64_t n = 0; n < N; ++n) {
    const T* x = inp + n * C;
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += double(x[c]);
    double mu = s / double(C), q = 0;
    for (int64_t c = 0; c < C; ++c) q += (double(x[c]) - mu) * (double(x[c]) - mu);
    double r = 1.0 / std::sqrt(q / double(C) + eps);
    mean[n] = T(mu);
    rstd[n] = T(r);
    for (int64_t c = 0; c < C; ++c)
      out[n * C + c] = T((double(x[c]) - mu) * r * (weight ? double(weight[c]) : 1.0) + (bias ? double(bias[c]) : 0.0));
  }
}

template <class T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, const T* mean,
                        const T* rstd, int64_t N, int64_t C) {
  if (dinp) {
    parallel_for(N, 8 * C, [&](int64_t r0, int64_t r1) {
      std::vector<T> dxhat(static_cast<size_t>(C)), xhat(static_cast<size_t>(C));
      for (int64_t n = r0; n < r1; ++n) {
        const T* dy = dout + n * C;
        const T* x = inp + n * C;
        T* dx = dinp + n * C;
        T m = mean[n], r = rstd[n];
        for (int64_t c = 0; c < C; ++c) {
          xhat[size_t(c)] = (x[c] - m) * r;
          dxhat[size_t(c)] = weight ? dy[c] * weight[c] : dy[c];
        }
        // term 1: mean of dxhat; term 2: mean of dxhat * xhat (both in f64).
        T t1 = T(row_sum<T, double>(dxhat.data(), C) / double(C));
        T t2 = T(row_dot(dxhat.data(), xhat.data(), C) / double(C));
        for (int64_t c = 0; c < C; ++c) dx[c] += r * (dxhat[size_t(c)] - t1 - xhat[size_t(c)] * t2);
      }
    });
  }
  param_grads(dweight, dbias, dout, inp, mean, rstd, N, C);
}

template <class T>
void layernorm_backward_ref(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, const T* mean,
                            const T* rstd, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const T* dy = dout + n * C;
    const T* x = inp + n * C;
    double m = double(mean[n]), r = double(rstd[n]), t1 = 0, t2 = 0;
    for (int64_t c = 0; c < C; ++c) {
      double dxh = double(dy[c]) * (weight ? double(weight[c]) : 1.0);
      t1 += dxh;
      t2 += dxh * (double(x[c]) - m) * r;
    }
    t1 /= double(C);
    t2 /= double(C);
    for (int64_t c = 0; c < C; ++c) {
      double xh = (double(x[c]) - m) * r;
      double dxh = double(dy[c]) * (weight ? double(weight[c]) : 1.0);
      if (dinp) dinp[n * C + c] += T(r * (dxh - t1 - xh * t2));
      if (dweight) dweight[c] += T(double(dy[c]) * xh);
      if (dbias) dbias[c] += dy[c];
    }
  }
}

// ---- RMSNorm -----------------------------------------------------------------------------

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps) {
  parallel_for(N, 4 * C, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const T* x = inp + n * C;
      T* y = out + n * C;
      double ms = C > 0 ? row_sqdev<T>(x, C, 0.0) / double(C) : 0.0;  // mean of x^2
      T r = T(1.0 / std::sqrt(ms + eps));
      rstd[n] = r;
      if (weight) {
        for (int64_t c = 0; c < C; ++c) y[c] = x[c] * r * weight[c];
      } else {
        for (int64_t c = 0; c < C; ++c) y[c] = x[c] * r;
      }
    }
  });
}

template <class T>
void rmsnorm_forward_ref(T* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps) {
  for (int64_t n = 0; n < N; ++n) {
    const T* x = inp + n * C;
    double q = 0;
    for (int64_t c = 0; c < C; ++c) q += double(x[c]) * double(x[c]);
    double r = 1.0 / std::sqrt(q / double(C) + eps);
    rstd[n] = T(r);
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = T(double(x[c]) * r * (weight ? double(weight[c]) : 1.0));
  }
}

template <class T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd, int64_t N,
                      int64_t C) {
  if (dinp) {
    parallel_for(N, 6 * C, [&](int64_t r0, int64_t r1) {
      std::vector<T> dxhat(static_cast<size_t>(C));
      for (int64_t n = r0; n < r1; ++n) {
        const T* dy = dout + n * C;
        const T* x = inp + n * C;
        T* dx = dinp + n * C;
        T r = rstd[n];
        for (int64_t c = 0; c < C; ++c) dxhat[size_t(c)] = weight ? dy[c] * weight[c] : dy[c];
        // mean(dxhat * xhat) = r * mean(dxhat * x)
        T t2 = T(double(r) * row_dot(dxhat.data(), x, C) / double(C));
        for (int64_t c = 0; c < C; ++c) dx[c] += r * (dxhat[size_t(c)] - x[c] * r * t2);
      }
    });
  }
  param_grads<T>(dweight, nullptr, dout, inp, nullptr, rstd, N, C);
}

template <class T>
void rmsnorm_backward_ref(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd, int64_t N,
                          int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const T* dy = dout + n * C;
    const T* x = inp + n * C;
    double r = double(rstd[n]), t2 = 0;
    for (int64_t c = 0; c < C; ++c) t2 += double(dy[c]) * (weight ? double(weight[c]) : 1.0) * double(x[c]) * r;
    t2 /= double(C);
    for (int64_t c = 0; c < C; ++c) {
      double xh = double(x[c]) * r;
      double dxh = double(dy[c]) * (weight ? double(weight[c]) : 1.0);
      if (dinp) dinp[n * C + c] += T(r * (dxh - xh * t2));
      if (dweight) dweight[c] += T(double(dy[c]) * xh);
    }
  }
}

#define TZ_INST(T)                                                                                                     \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, double);              \
  template void layernorm_forward_ref<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, double);          \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t, int64_t); \
  template void layernorm_backward_ref<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t,       \
                                          int64_t);                                                                    \
  template void rmsnorm_forward<T>(T*, T*, const T*, const T*, int64_t, int64_t, double);                              \
  template void rmsnorm_forward_ref<T>(T*, T*, const T*, const T*, int64_t, int64_t, double);                          \
  template void rmsnorm_backward<T>(T*, T*, const T*, const T*, const T*, const T*, int64_t, int64_t);                 \
  template void rmsnorm_backward_ref<T>(T*, T*, const T*, const T*, const T*, const T*, int64_t, int64_t);
TZ_INST(float)
TZ_INST(double)
#undef TZ_INST

}  // namespace tz::kernels
