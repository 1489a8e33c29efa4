// Reduction kernels; see reduce.h for the [O, N, I] layout and the accumulation rules.
#include "core/kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"

namespace tz::kernels {

namespace {
// Accumulator type: f64 for floating inputs, i64 for i64.
template <class T>
using Acc = std::conditional_t<std::is_same_v<T, int64_t>, int64_t, double>;

constexpr int64_t kSumBlock = 16384;  // N-block of one partial sum (fixed: thread-independent)
constexpr int64_t kInnerBlock = 256;  // inner columns accumulated together when I > 1
}  // namespace

// ---- sum / mean ------------------------------------------------------------------------

template <class T>
void sum_forward(T* out, const T* inp, int64_t O, int64_t N, int64_t I, double scale) {
  using A = Acc<T>;
  auto finish = [&](A s) -> T {
    if constexpr (std::is_same_v<T, int64_t>)
      return s;
    else
      return T(double(s) * scale);
  };
  if (I == 1) {
    // Rows are contiguous: split each row into fixed blocks, sum blocks in parallel with
    // several independent accumulators (vectorizable), then add the block sums in order.
    int64_t nb = std::max<int64_t>((N + kSumBlock - 1) / kSumBlock, 1);
    std::vector<A> part(size_t(O * nb));
    parallel_for(O * nb, std::min(N, kSumBlock), [&](int64_t w0, int64_t w1) {
      for (int64_t w = w0; w < w1; ++w) {
        int64_t o = w / nb, b = w % nb;
        int64_t n0 = b * kSumBlock, n1 = std::min(N, n0 + kSumBlock);
        part[size_t(w)] = row_sum<T, A>(inp + o * N + n0, n1 - n0);
      }
    });
    for (int64_t o = 0; o < O; ++o) {
      A s = 0;
      for (int64_t b = 0; b < nb; ++b) s += part[size_t(o * nb + b)];
      out[o] = finish(s);
    }
    return;
  }
  // I > 1: each work item owns a block of inner columns of one o and walks all N rows,
  // adding whole contiguous runs into an accumulator array (vectorizes across columns).
  int64_t ib = (I + kInnerBlock - 1) / kInnerBlock;
  parallel_for(O * ib, N * std::min(I, kInnerBlock), [&](int64_t w0, int64_t w1) {
    A acc[kInnerBlock];
    for (int64_t w = w0; w < w1; ++w) {
      int64_t o = w / ib, i0 = (w % ib) * kInnerBlock, m = std::min(kInnerBlock, I - i0);
      for (int64_t j = 0; j < m; ++j) acc[j] = 0;
      const T* base = inp + o * N * I + i0;
      for (int64_t n = 0; n < N; ++n) {
        const T* row = base + n * I;
        for (int64_t j = 0; j < m; ++j) acc[j] += A(row[j]);
      }
      for (int64_t j = 0; j < m; ++j) out[o * I + i0 + j] = finish(acc[j]);
    }
  });
}

template <class T>
void sum_forward_ref(T* out, const T* inp, int64_t O, int64_t N, int64_t I, double scale) {
  using A = Acc<T>;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      A s = 0;
      for (int64_t n = 0; n < N; ++n) s += A(inp[(o * N + n) * I + i]);
      if constexpr (std::is_same_v<T, int64_t>)
        out[o * I + i] = s;
      else
        out[o * I + i] = T(double(s) * scale);
    }
}

template <class T>
void sum_backward(T* dinp, const T* dout, int64_t O, int64_t N, int64_t I, double scale) {
  parallel_for(O * N, I, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* g = dout + (r / N) * I;
      T* d = dinp + r * I;
      T s = T(scale);
      for (int64_t i = 0; i < I; ++i) d[i] += s * g[i];
    }
  });
}

// ---- var ---------------------------------------------------------------------------------

namespace {
// Mean and sum of squared deviations of one strided column (two passes, f64).
template <class T>
void column_moments(const T* x, int64_t N, int64_t stride, double& mean, double& m2) {
  if (stride == 1) {
    mean = N > 0 ? row_sum<T, double>(x, N) / double(N) : 0.0;
    m2 = row_sqdev<T>(x, N, mean);
    return;
  }
  double s = 0;
  for (int64_t n = 0; n < N; ++n) s += double(x[n * stride]);
  mean = N > 0 ? s / double(N) : 0.0;
  double q = 0;
  for (int64_t n = 0; n < N; ++n) {
    double d = double(x[n * stride]) - mean;
    q += d * d;
  }
  m2 = q;
}
}  // namespace

template <class T>
void var_forward(T* out, const T* inp, int64_t O, int64_t N, int64_t I, int64_t correction) {
  double denom = double(N - correction);
  parallel_for(O * I, 3 * N, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t o = w / I, i = w % I;
      double mean, m2;
      column_moments(inp + o * N * I + i, N, I, mean, m2);
      // N - correction <= 0: 0/0 = NaN or x/0 = Inf, like PyTorch (no exception).
      out[w] = T(m2 / denom);
    }
  });
}

template <class T>
void var_forward_ref(T* out, const T* inp, int64_t O, int64_t N, int64_t I, int64_t correction) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) s += double(inp[(o * N + n) * I + i]);
      double mean = s / double(N), q = 0;
      for (int64_t n = 0; n < N; ++n) {
        double d = double(inp[(o * N + n) * I + i]) - mean;
        q += d * d;
      }
      out[o * I + i] = T(q / double(N - correction));
    }
}

template <class T>
void var_backward(T* dinp, const T* dout, const T* inp, int64_t O, int64_t N, int64_t I, int64_t correction) {
  double denom = double(N - correction);
  parallel_for(O * I, 3 * N, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t o = w / I, i = w % I;
      const T* x = inp + o * N * I + i;
      T* d = dinp + o * N * I + i;
      double mean, m2;
      column_moments(x, N, I, mean, m2);
      // d var / d x_n = 2 (x_n - mean) / (N - correction); the mean's own dependence on
      // x_n drops out because sum_n (x_n - mean) = 0.
      double c = 2.0 * double(dout[w]) / denom;
      for (int64_t n = 0; n < N; ++n) d[n * I] += T(c * (double(x[n * I]) - mean));
    }
  });
}

// ---- max / min ---------------------------------------------------------------------------

template <class T>
void max_forward(T* out, int64_t* idx, const T* inp, int64_t O, int64_t N, int64_t I, bool is_max) {
  parallel_for(O * I, N, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t o = w / I, i = w % I;
      const T* x = inp + o * N * I + i;
      T best = x[0];
      int64_t at = 0;
      for (int64_t n = 1; n < N && best == best; ++n) {  // stop at a NaN: it wins
        T v = x[n * I];
        // Strict comparison keeps the first extremum; v != v is a NaN, which wins.
        if ((is_max ? v > best : v < best) || v != v) {
          best = v;
          at = n;
        }
      }
      out[w] = best;
      idx[w] = at;
    }
  });
}

template <class T>
void index_backward(T* dinp, const T* dout, const int64_t* idx, int64_t O, int64_t N, int64_t I) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) dinp[(o * N + idx[o * I + i]) * I + i] += dout[o * I + i];
}

// ---- logsumexp ---------------------------------------------------------------------------

namespace {
template <class T>
T lse_finish(T m, double s) {
  // m = -inf: every entry is -inf (or N = 0), the answer is -inf, not NaN from -inf - -inf.
  // m = +inf: the answer is +inf. Else m + log(s) with s in [1, N].
  if (std::isinf(m)) return m;
  return T(double(m) + std::log(s));
}
}  // namespace

template <class T>
void logsumexp_forward(T* out, const T* inp, int64_t O, int64_t N, int64_t I) {
  parallel_for(O * I, 20 * N, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t o = w / I, i = w % I;
      const T* x = inp + o * N * I + i;
      if (N == 0) {
        out[w] = -std::numeric_limits<T>::infinity();
        continue;
      }
      if (I == 1) {
        T m = row_max<T>(x, N);
        out[w] = lse_finish(m, std::isinf(m) ? 1.0 : row_sum_exp<T>(x, N, m));
        continue;
      }
      T m = x[0];
      for (int64_t n = 1; n < N; ++n) m = std::max(m, x[n * I]);
      double s = 0;
      if (!std::isinf(m))
        for (int64_t n = 0; n < N; ++n) s += double(std::exp(x[n * I] - m));
      out[w] = lse_finish(m, s);
    }
  });
}

template <class T>
void logsumexp_forward_ref(T* out, const T* inp, int64_t O, int64_t N, int64_t I) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      double m = -INFINITY;
      for (int64_t n = 0; n < N; ++n) m = std::max(m, double(inp[(o * N + n) * I + i]));
      double s = 0;
      if (!std::isinf(m))
        for (int64_t n = 0; n < N; ++n) s += std::exp(double(inp[(o * N + n) * I + i]) - m);
      out[o * I + i] = std::isinf(m) ? T(m) : T(m + std::log(s));
    }
}

template <class T>
void logsumexp_backward(T* dinp, const T* dout, const T* out, const T* inp, int64_t O, int64_t N, int64_t I) {
  parallel_for(O * I, 20 * N, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t o = w / I, i = w % I;
      const T* x = inp + o * N * I + i;
      T* d = dinp + o * N * I + i;
      T g = dout[w], l = out[w];
      for (int64_t n = 0; n < N; ++n) d[n * I] += g * std::exp(x[n * I] - l);
    }
  });
}

// ---- cumsum ------------------------------------------------------------------------------

template <class T>
void cumsum_forward(T* out, const T* inp, int64_t O, int64_t N, int64_t I) {
  using A = Acc<T>;
  parallel_for(O * I, N, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t o = w / I, i = w % I;
      const T* x = inp + o * N * I + i;
      T* y = out + o * N * I + i;
      A s = 0;
      for (int64_t n = 0; n < N; ++n) {
        s += A(x[n * I]);
        y[n * I] = T(s);
      }
    }
  });
}

template <class T>
void cumsum_backward(T* dinp, const T* dout, int64_t O, int64_t N, int64_t I) {
  parallel_for(O * I, N, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t o = w / I, i = w % I;
      const T* g = dout + o * N * I + i;
      T* d = dinp + o * N * I + i;
      double s = 0;
      for (int64_t n = N - 1; n >= 0; --n) {
        s += double(g[n * I]);
        d[n * I] += T(s);
      }
    }
  });
}

// ---- instantiations --------------------------------------------------------------------
#define TZ_INST_FLOAT(T)                                                                            \
  template void sum_forward<T>(T*, const T*, int64_t, int64_t, int64_t, double);                    \
  template void sum_forward_ref<T>(T*, const T*, int64_t, int64_t, int64_t, double);                \
  template void sum_backward<T>(T*, const T*, int64_t, int64_t, int64_t, double);                   \
  template void var_forward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t);                   \
  template void var_forward_ref<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t);               \
  template void var_backward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t);        \
  template void max_forward<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, bool);            \
  template void index_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);         \
  template void logsumexp_forward<T>(T*, const T*, int64_t, int64_t, int64_t);                      \
  template void logsumexp_forward_ref<T>(T*, const T*, int64_t, int64_t, int64_t);                  \
  template void logsumexp_backward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t); \
  template void cumsum_forward<T>(T*, const T*, int64_t, int64_t, int64_t);                         \
  template void cumsum_backward<T>(T*, const T*, int64_t, int64_t, int64_t);
TZ_INST_FLOAT(float)
TZ_INST_FLOAT(double)
#undef TZ_INST_FLOAT
template void sum_forward<int64_t>(int64_t*, const int64_t*, int64_t, int64_t, int64_t, double);
template void sum_forward_ref<int64_t>(int64_t*, const int64_t*, int64_t, int64_t, int64_t, double);
template void cumsum_forward<int64_t>(int64_t*, const int64_t*, int64_t, int64_t, int64_t);
template void max_forward<int64_t>(int64_t*, int64_t*, const int64_t*, int64_t, int64_t, int64_t, bool);

}  // namespace tz::kernels
