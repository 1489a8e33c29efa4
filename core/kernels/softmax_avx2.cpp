// AVX2+FMA row helpers for softmax, log-softmax and cross-entropy (f32). Compiled with
// -mavx2 -mfma; callers check tz::simd_enabled() first. exp is vecmath.h's (< 1 ulp).
// Sums of exponentials are accumulated in f64 (two __m256d per 8 floats) so long rows
// (V = 50k vocabularies) lose no accuracy.
#include <immintrin.h>

#include <cmath>  // vecmath.h uses INFINITY and NAN without including it

#include "core/kernels/softmax.h"
#include "core/kernels/vecmath.h"

namespace tz::kernels::avx2 {

using simd::F8;

namespace {
// Adds the 8 floats of v to the two f64 accumulators.
inline void acc_f64(__m256d& lo, __m256d& hi, F8 v) {
  lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v.v)));
  hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v.v, 1)));
}
inline double hsum(__m256d a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
}  // namespace

float row_max(const float* x, int64_t C) {
  int64_t i = 0;
  F8 m(x[0]);
  // A NaN in x may be skipped here; the exp/sum that follows turns the row NaN anyway.
  for (; i + 8 <= C; i += 8) m = _mm256_max_ps(F8::load(x + i).v, m.v);
  alignas(32) float lanes[8];
  m.store(lanes);
  float r = lanes[0];
  for (int k = 1; k < 8; ++k) r = lanes[k] > r ? lanes[k] : r;
  for (; i < C; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

double row_sum_exp(const float* x, int64_t C, float m) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  F8 vm(m);
  int64_t i = 0;
  for (; i + 8 <= C; i += 8) acc_f64(lo, hi, simd::exp(F8::load(x + i) - vm));
  if (i < C) {
    int n = int(C - i);
    // Masked lanes load 0; exp(0 - m) would be added, so mask the result too.
    F8 e = simd::exp(F8::load_partial(x + i, n) - vm);
    e = _mm256_and_ps(e.v, _mm256_castsi256_ps(F8::tail_mask(n)));
    acc_f64(lo, hi, e);
  }
  return hsum(_mm256_add_pd(lo, hi));
}

double row_exp_store(float* y, const float* x, int64_t C, float m) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  F8 vm(m);
  int64_t i = 0;
  for (; i + 8 <= C; i += 8) {
    F8 e = simd::exp(F8::load(x + i) - vm);
    e.store(y + i);
    acc_f64(lo, hi, e);
  }
  if (i < C) {
    int n = int(C - i);
    F8 e = simd::exp(F8::load_partial(x + i, n) - vm);
    e = _mm256_and_ps(e.v, _mm256_castsi256_ps(F8::tail_mask(n)));
    e.store_partial(y + i, n);
    acc_f64(lo, hi, e);
  }
  return hsum(_mm256_add_pd(lo, hi));
}

void row_scale(float* y, int64_t C, float s) {
  F8 vs(s);
  int64_t i = 0;
  for (; i + 8 <= C; i += 8) (F8::load(y + i) * vs).store(y + i);
  for (; i < C; ++i) y[i] *= s;
}

void row_sub2(float* y, const float* x, int64_t C, float a, float b) {
  F8 va(a), vb(b);
  int64_t i = 0;
  for (; i + 8 <= C; i += 8) ((F8::load(x + i) - va) - vb).store(y + i);
  for (; i < C; ++i) y[i] = (x[i] - a) - b;
}

void row_axpy_exp(float* d, const float* x, int64_t C, float a, float b) {
  F8 va(a), vb(b);
  int64_t i = 0;
  for (; i + 8 <= C; i += 8) simd::fma(va, simd::exp(F8::load(x + i) - vb), F8::load(d + i)).store(d + i);
  if (i < C) {
    int n = int(C - i);
    F8 r = simd::fma(va, simd::exp(F8::load_partial(x + i, n) - vb), F8::load_partial(d + i, n));
    r.store_partial(d + i, n);
  }
}

}  // namespace tz::kernels::avx2
