// Fused optimizer updates (see optim.h for the equations). Layout of this file: for each
// optimizer, the plain reference (the equations as written in the paper, one element at a
// time), then the fast version (constants hoisted, a tight loop, threads for large N).
#include "core/kernels/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"

namespace tz::kernels {

namespace {

// Rough cost of one element's update in "operations", for parallel_for's work threshold.
constexpr int64_t kUpdateCost = 16;

// sign(x) with sign(0) = 0 and NaN kept, as torch.sign.
template <class T>
inline T sign_of(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);
}

// Runs body(begin, end) over [0, N), in parallel when N is large. The body is passed by
// reference inside a one-pointer lambda so std::function stores it without allocating.
template <class Body>
void run_chunks(int64_t N, const Body& body) {
  parallel_for(N, kUpdateCost, [&body](int64_t b, int64_t e) { body(b, e); });
}

}  // namespace

// ==== SGD ====================================================================================

template <class T>
void sgd_update_ref(T* p, T* m, const T* g, int64_t N, double lr, double momentum,
                    double dampening, bool nesterov, double wd, bool first) {
  for (int64_t i = 0; i < N; ++i) {
    T d = g[i];
    if (wd != 0) d = d + T(wd) * p[i];  // L2 term
    if (momentum != 0) {
      m[i] = first ? d : T(momentum) * m[i] + T(1 - dampening) * d;
      d = nesterov ? d + T(momentum) * m[i] : m[i];
    }
    p[i] = p[i] - T(lr) * d;
  }
}

template <class T>
void sgd_update(T* p, T* m, const T* g, int64_t N, double lr, double momentum, double dampening,
                bool nesterov, double wd, bool first) {
  const T lr_t = T(lr), wd_t = T(wd), mom = T(momentum), damp = T(1 - dampening);
  if (momentum == 0) {
    run_chunks(N, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] -= lr_t * (wd != 0 ? g[i] + wd_t * p[i] : g[i]);
    });
    return;
  }
  run_chunks(N, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T d = wd != 0 ? g[i] + wd_t * p[i] : g[i];
      T mi = first ? d : mom * m[i] + damp * d;
      m[i] = mi;
      p[i] -= lr_t * (nesterov ? d + mom * mi : mi);
    }
  });
}

// ==== Adam and AdamW ===========================================================================

template <class T>
void adam_update_ref(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1,
                     double beta2, double eps, double wd, double bias_c1, double bias_c2) {
  for (int64_t i = 0; i < N; ++i) {
    T d = g[i] + T(wd) * p[i];                                // L2 into the gradient
    m[i] = T(beta1) * m[i] + T(1 - beta1) * d;                // first moment
    v[i] = T(beta2) * v[i] + T(1 - beta2) * d * d;            // second moment
    T m_hat = m[i] / T(bias_c1);                              // bias corrections
    T v_hat = v[i] / T(bias_c2);
    p[i] = p[i] - T(lr) * m_hat / (std::sqrt(v_hat) + T(eps));
  }
}

template <class T>
void adamw_update_ref(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1,
                      double beta2, double eps, double wd, double bias_c1, double bias_c2) {
  for (int64_t i = 0; i < N; ++i) {
    p[i] = p[i] * T(1 - lr * wd);                             // decoupled decay
    T d = g[i];
    m[i] = T(beta1) * m[i] + T(1 - beta1) * d;
    v[i] = T(beta2) * v[i] + T(1 - beta2) * d * d;
    T m_hat = m[i] / T(bias_c1);
    T v_hat = v[i] / T(bias_c2);
    p[i] = p[i] - T(lr) * m_hat / (std::sqrt(v_hat) + T(eps));
  }
}

namespace {
// The shared fast loop. Rearranged as PyTorch does (same value up to rounding):
//   p -= (lr / bias_c1) * m / (sqrt(v) / sqrt(bias_c2) + eps)
// Decoupled = true: AdamW (p *= 1 - lr*wd first, g unchanged); false: Adam (g += wd*p).
template <bool Decoupled, class T>
void adam_fast(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2,
               double eps, double wd, double bias_c1, double bias_c2) {
  const T b1 = T(beta1), one_b1 = T(1 - beta1), b2 = T(beta2), one_b2 = T(1 - beta2);
  const T step_size = T(lr / bias_c1);
  const T inv_sqrt_c2 = T(1 / std::sqrt(bias_c2));
  const T eps_t = T(eps), wd_t = T(wd), decay = T(1 - lr * wd);
  run_chunks(N, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T pi = p[i], d = g[i];
      if constexpr (Decoupled) pi *= decay;
      else d += wd_t * pi;
      T mi = b1 * m[i] + one_b1 * d;
      T vi = b2 * v[i] + one_b2 * d * d;
      m[i] = mi;
      v[i] = vi;
      p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_sqrt_c2 + eps_t);
    }
  });
}
}  // namespace

template <class T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2,
                 double eps, double wd, double bias_c1, double bias_c2) {
  adam_fast<false>(p, m, v, g, N, lr, beta1, beta2, eps, wd, bias_c1, bias_c2);
}

template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1,
                  double beta2, double eps, double wd, double bias_c1, double bias_c2) {
  adam_fast<true>(p, m, v, g, N, lr, beta1, beta2, eps, wd, bias_c1, bias_c2);
}

// ==== Lion =====================================================================================

template <class T>
void lion_update_ref(T* p, T* m, const T* g, int64_t N, double lr, double beta1, double beta2,
                     double wd) {
  for (int64_t i = 0; i < N; ++i) {
    T u = sign_of(T(beta1) * m[i] + T(1 - beta1) * g[i]);  // interpolate, then sign
    p[i] = p[i] - T(lr) * (u + T(wd) * p[i]);
    m[i] = T(beta2) * m[i] + T(1 - beta2) * g[i];          // momentum update comes last
  }
}

template <class T>
void lion_update(T* p, T* m, const T* g, int64_t N, double lr, double beta1, double beta2,
                 double wd) {
  const T b1 = T(beta1), one_b1 = T(1 - beta1), b2 = T(beta2), one_b2 = T(1 - beta2);
  const T lr_t = T(lr), wd_t = T(wd);
  run_chunks(N, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T mi = m[i], gi = g[i];
      T u = sign_of(b1 * mi + one_b1 * gi);
      p[i] -= lr_t * (u + wd_t * p[i]);
      m[i] = b2 * mi + one_b2 * gi;
    }
  });
}

// ==== clipping helpers ===========================================================================

template <class T>
double sum_squares(const T* x, int64_t N) {
  // Fixed blocks, each summed with four accumulators, then the block sums added in order:
  // the same answer for any thread count. The partial-sum buffer is reused across calls.
  constexpr int64_t kBlock = 1 << 15;
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  thread_local std::vector<double> partial;
  if (int64_t(partial.size()) < blocks) partial.resize(size_t(blocks));
  double* part = partial.data();
  auto body = [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      int64_t s = blk * kBlock, e = std::min(N, s + kBlock);
      double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      int64_t i = s;
      for (; i + 4 <= e; i += 4) {
        double x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
        a0 += x0 * x0;
        a1 += x1 * x1;
        a2 += x2 * x2;
        a3 += x3 * x3;
      }
      for (; i < e; ++i) a0 += double(x[i]) * double(x[i]);
      part[blk] = (a0 + a1) + (a2 + a3);
    }
  };
  parallel_for(blocks, kBlock, [&body](int64_t b, int64_t e) { body(b, e); });
  double total = 0;
  for (int64_t blk = 0; blk < blocks; ++blk) total += part[blk];
  return total;
}

template <class T>
void scale_inplace(T* x, int64_t N, double s) {
  const T st = T(s);
  parallel_for(N, 2, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] *= st;
  });
}

// ---- instantiations ---------------------------------------------------------------------------
#define TZ_OPTIM_INSTANTIATE(T)                                                                 \
  template void sgd_update<T>(T*, T*, const T*, int64_t, double, double, double, bool, double,  \
                              bool);                                                            \
  template void sgd_update_ref<T>(T*, T*, const T*, int64_t, double, double, double, bool,      \
                                  double, bool);                                                \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double,   \
                               double, double, double);                                         \
  template void adam_update_ref<T>(T*, T*, T*, const T*, int64_t, double, double, double,       \
                                   double, double, double, double);                             \
  template void adamw_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double,  \
                                double, double, double);                                        \
  template void adamw_update_ref<T>(T*, T*, T*, const T*, int64_t, double, double, double,      \
                                    double, double, double, double);                            \
  template void lion_update<T>(T*, T*, const T*, int64_t, double, double, double, double);      \
  template void lion_update_ref<T>(T*, T*, const T*, int64_t, double, double, double, double);  \
  template double sum_squares<T>(const T*, int64_t);                                            \
  template void scale_inplace<T>(T*, int64_t, double);

TZ_OPTIM_INSTANTIATE(float)
TZ_OPTIM_INSTANTIATE(double)
#undef TZ_OPTIM_INSTANTIATE

}  // namespace tz::kernels
