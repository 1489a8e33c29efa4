// Fused optimizer updates (see optim.h for the equations). Layout of this file: for each
// optimizer, the plain reference (the equations as written in the paper, one element at a
// time), then the fast version (constants hoisted, a tight loop, threads for large N).
#include "core/kernels/optim.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

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
void sgd_update_ref(T* p, T* m, const T* g, int64_t N, double lr, double momentum, double dampening, bool nesterov,
                    double wd, bool first) {
  for (int64_t i = 0; i < N; ++i) {
    T d = g[i];
    d = d + T(wd) * p[i];  // L2 term
    if (momentum != 0) {
      m[i] = first ? d : T(momentum) * m[i] + T(1 - dampening) * d;
      d = nesterov ? d + T(momentum) * m[i] : m[i];
    }
    p[i] = p[i] - T(lr) * d;
  }
}

namespace {
// One chunk [b, e) of the fast SGD loop. __restrict: the buffers never overlap, which lets
// the compiler vectorise.
template <class T>
void sgd_chunk(T* __restrict p, T* __restrict m, const T* __restrict g, int64_t b, int64_t e, T lr, T wd, T mom, T damp,
               bool nesterov, bool first) {
  if (!m) {  // momentum == 0: no buffer
    for (int64_t i = b; i < e; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
  for (int64_t i = b; i < e; ++i) {
    T d = g[i] + wd * p[i];
    T mi = first ? d : mom * m[i] + damp * d;
    m[i] = mi;
    p[i] -= lr * (nesterov ? d + mom * mi : mi);
  }
}
}  // namespace

template <class T>
void sgd_update(T* p, T* m, const T* g, int64_t N, double lr, double momentum, double dampening, bool nesterov,
                double wd, bool first) {
  if (momentum == 0) m = nullptr;
  run_chunks(N, [&](int64_t b, int64_t e) {
    sgd_chunk<T>(p, m, g, b, e, T(lr), T(wd), T(momentum), T(1 - dampening), nesterov, first);
  });
}

// ==== Adam and AdamW ===========================================================================

template <class T>
void adam_update_ref(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps,
                     double wd, double bias_c1, double bias_c2) {
  for (int64_t i = 0; i < N; ++i) {
    T d = g[i] + T(wd) * p[i];                      // L2 into the gradient
    m[i] = T(beta1) * m[i] + T(1 - beta1) * d;      // first moment
    v[i] = T(beta2) * v[i] + T(1 - beta2) * d * d;  // second moment
    T m_hat = m[i] / T(bias_c1);                    // bias corrections
    T v_hat = v[i] / T(bias_c2);
    p[i] = p[i] - T(lr) * m_hat / (std::sqrt(v_hat) + T(eps));
  }
}

template <class T>
void adamw_update_ref(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps,
                      double wd, double bias_c1, double bias_c2) {
  for (int64_t i = 0; i < N; ++i) {
    p[i] = p[i] * T(1 - lr * wd);  // decoupled decay
    T d = g[i];
    m[i] = T(beta1) * m[i] + T(1 - beta1) * d;
    v[i] = T(beta2) * v[i] + T(1 - beta2) * d * d;
    T m_hat = m[i] / T(bias_c1);
    T v_hat = v[i] / T(bias_c2);
    p[i] = p[i] - T(lr) * m_hat / (std::sqrt(v_hat) + T(eps));
  }
}

namespace {
// The shared fast loop, rearranged as PyTorch does (same value up to rounding):
//   p -= (lr / bias_c1) * m / (sqrt(v) / sqrt(bias_c2) + eps)
// Decoupled = true: AdamW (p *= 1 - lr*wd first, g unchanged); false: Adam (g += wd*p).
template <class T>
struct AdamConsts {
  T b1, one_b1, b2, one_b2, step_size, inv_sqrt_c2, eps, wd, decay;
};

template <bool Decoupled, class T>
void adam_chunk(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g, int64_t b, int64_t e,
                const AdamConsts<T>& c) {
  int64_t i = b;
#if defined(__AVX2__) && defined(__FMA__)
  // f32 with AVX2 (this file is built with -march=native): 8 lanes at a time. GCC does not
  // vectorise the scalar loop below because std::sqrt may set errno; here the square root
  // is one instruction. The scalar loop finishes the tail.
  if constexpr (std::is_same_v<T, float>) {
    if (simd_enabled()) {
      const __m256 b1 = _mm256_set1_ps(c.b1), one_b1 = _mm256_set1_ps(c.one_b1);
      const __m256 b2 = _mm256_set1_ps(c.b2), one_b2 = _mm256_set1_ps(c.one_b2);
      const __m256 step = _mm256_set1_ps(c.step_size), isc2 = _mm256_set1_ps(c.inv_sqrt_c2);
      const __m256 eps = _mm256_set1_ps(c.eps), wd = _mm256_set1_ps(c.wd);
      const __m256 decay = _mm256_set1_ps(c.decay);
      for (; i + 8 <= e; i += 8) {
        __m256 pi = _mm256_loadu_ps(p + i), d = _mm256_loadu_ps(g + i);
        if constexpr (Decoupled)
          pi = _mm256_mul_ps(pi, decay);
        else
          d = _mm256_fmadd_ps(wd, pi, d);
        __m256 mi = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + i), _mm256_mul_ps(one_b1, d));
        __m256 vi = _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + i), _mm256_mul_ps(one_b2, _mm256_mul_ps(d, d)));
        __m256 denom = _mm256_fmadd_ps(_mm256_sqrt_ps(vi), isc2, eps);
        pi = _mm256_sub_ps(pi, _mm256_div_ps(_mm256_mul_ps(step, mi), denom));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(p + i, pi);
      }
    }
  }
#endif
  for (; i < e; ++i) {
    T pi = p[i], d = g[i];
    if constexpr (Decoupled)
      pi *= c.decay;
    else
      d += c.wd * pi;
    T mi = c.b1 * m[i] + c.one_b1 * d;
    T vi = c.b2 * v[i] + c.one_b2 * d * d;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - c.step_size * mi / (std::sqrt(vi) * c.inv_sqrt_c2 + c.eps);
  }
}

template <bool Decoupled, class T>
void adam_fast(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps, double wd,
               double bias_c1, double bias_c2) {
  const AdamConsts<T> c{T(beta1), T(1 - beta1), T(beta2),      T(1 - beta2), T(lr / bias_c1), T(1 / std::sqrt(bias_c2)),
                        T(eps),   T(wd),        T(1 - lr * wd)};
  run_chunks(N, [&](int64_t b, int64_t e) { adam_chunk<Decoupled, T>(p, m, v, g, b, e, c); });
}
}  // namespace

template <class T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps, double wd,
                 double bias_c1, double bias_c2) {
  adam_fast<false>(p, m, v, g, N, lr, beta1, beta2, eps, wd, bias_c1, bias_c2);
}

template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps, double wd,
                  double bias_c1, double bias_c2) {
  adam_fast<true>(p, m, v, g, N, lr, beta1, beta2, eps, wd, bias_c1, bias_c2);
}

// ==== Lion =====================================================================================

template <class T>
void lion_update_ref(T* p, T* m, const T* g, int64_t N, double lr, double beta1, double beta2, double wd) {
  for (int64_t i = 0; i < N; ++i) {
    T u = sign_of(T(beta1) * m[i] + T(1 - beta1) * g[i]);  // interpolate, then sign
    p[i] = p[i] - T(lr) * (u + T(wd) * p[i]);
    m[i] = T(beta2) * m[i] + T(1 - beta2) * g[i];  // momentum update comes last
  }
}

namespace {
template <class T>
void lion_chunk(T* __restrict p, T* __restrict m, const T* __restrict g, int64_t b, int64_t e, T b1, T one_b1, T b2,
                T one_b2, T lr, T wd) {
  for (int64_t i = b; i < e; ++i) {
    T mi = m[i], gi = g[i];
    T u = sign_of(b1 * mi + one_b1 * gi);
    p[i] -= lr * (u + wd * p[i]);
    m[i] = b2 * mi + one_b2 * gi;
  }
}
}  // namespace

template <class T>
void lion_update(T* p, T* m, const T* g, int64_t N, double lr, double beta1, double beta2, double wd) {
  run_chunks(N, [&](int64_t b, int64_t e) {
    lion_chunk<T>(p, m, g, b, e, T(beta1), T(1 - beta1), T(beta2), T(1 - beta2), T(lr), T(wd));
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
#define TZ_OPTIM_INSTANTIATE(T)                                                                                        \
  template void sgd_update<T>(T*, T*, const T*, int64_t, double, double, double, bool, double, bool);                  \
  template void sgd_update_ref<T>(T*, T*, const T*, int64_t, double, double, double, bool, double, bool);              \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, double, double, double); \
  template void adam_update_ref<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, double, double,      \
                                   double);                                                                            \
  template void adamw_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, double, double,         \
                                double);                                                                               \
  template void adamw_update_ref<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, double, double,     \
                                    double);                                                                           \
  template void lion_update<T>(T*, T*, const T*, int64_t, double, double, double, double);                             \
  template void lion_update_ref<T>(T*, T*, const T*, int64_t, double, double, double, double);                         \
  template double sum_squares<T>(const T*, int64_t);                                                                   \
  template void scale_inplace<T>(T*, int64_t, double);

TZ_OPTIM_INSTANTIATE(float)
TZ_OPTIM_INSTANTIATE(double)
#undef TZ_OPTIM_INSTANTIATE

}  // namespace tz::kernels
