// AVX2+FMA tile primitives of the fused attention (f32): attention_simd.inl over 8-float ymm
// vectors; shapes and math in attention.h. Compiled with -mavx2 -mfma; callers check
// tz::simd_enabled() first.
//
// Measured alternative (B 8, H 4, T 256, D 64, causal, 1 thread, 64 x 64 tiles): packing
// each tile and running the 6x16 GEMM micro-kernel of gemm_avx2.cpp instead gave the same
// time within noise (forward ~7.2 ms, forward + backward ~26 ms, ~48 GFLOP/s), so we keep
// these simpler kernels that need no packing or scratch buffers.
#include <immintrin.h>

#include <algorithm>
#include <cmath>  // vecmath.h uses INFINITY and NAN without including it

#include "core/kernels/attention.h"
#include "core/kernels/vecmath.h"

namespace tz::kernels::avx2 {
namespace {

struct V {
  static constexpr int kLanes = 8;
  static constexpr int kDotRows = 2;        // 2 x 4 dot accumulators + 4 + 1 operands of 16 ymm
  static constexpr int kAccVecs = 2;        // 4 rows x 16 columns
  static constexpr int kAccOneRowVecs = 8;  // one row (decoding) x 64 columns
  static constexpr int kDotTRows = 6;       // 6 rows x 2 vectors of keys: 12 accumulators
  static constexpr int kDotTVecs = 2;
  using type = __m256;
  using mask = __m256i;
  static __m256 zero() { return _mm256_setzero_ps(); }
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256i mask_n(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::min<int64_t>(n, 8))),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static __m256 load_m(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static void store_m(float* p, __m256 v, __m256i m) { _mm256_maskstore_ps(p, m, v); }
  static __m256 set1(float x) { return _mm256_set1_ps(x); }
  static __m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
  static __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
  static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  }
};

}  // namespace

#include "core/kernels/attention_simd.inl"

// exp(z) with z below kAttnExpCut clamped and then set to 0 (attention.h says why the cut is
// harmless): computing exp of a hidden score (-inf) or of one far below its row's max would
// make x86 take a microcode assist per lane for the underflow (measured: with top-k, where
// nearly every score of a tile is hidden, 45 % of the forward went there).
namespace {
inline simd::F8 exp_cut(simd::F8 z) {
  const simd::F8 cut(kAttnExpCut), zero(0.0f);
  const simd::F8 e = simd::exp(simd::max_nan(cut, z));  // NaN stays NaN
  return simd::select(simd::lt(z, cut), zero, e);
}
// z = x - m over a row of n, the masked tail lanes -inf (below the cut: 0, stored nowhere).
template <class F>
inline void exp_row(float* y, const float* x, int64_t n, float m, F&& each) {
  using simd::F8;
  const F8 vm(m);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) each(exp_cut(F8::load(x + i) - vm)).store(y + i);
  if (i < n) {
    const int r = int(n - i);
    const F8 z = simd::select(_mm256_castsi256_ps(F8::tail_mask(r)), F8::load_partial(x + i, r) - vm, F8(-INFINITY));
    each(exp_cut(z)).store_partial(y + i, r);
  }
}
}  // namespace

double attn_exp(float* y, const float* x, int64_t n, float m) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  exp_row(y, x, n, m, [&](simd::F8 e) {
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e.v)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e.v, 1)));
    return e;
  });
  __m256d s = _mm256_add_pd(lo, hi);
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

void attn_exp_rows(float* y, int64_t ldy, int64_t rows, int64_t n, const float* m) {
  for (int64_t r = 0; r < rows; ++r) exp_row(y + r * ldy, y + r * ldy, n, m[r], [](simd::F8 e) { return e; });
}

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols: 8 x 8 blocks through registers
// (unpack, shuffle, 128-bit permute), the edges one value at a time.
void attn_transpose(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      __m256 v[8], t[8];
      for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(src + (r + i) * lds + c);
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
      }
      for (int i = 0; i < 2; ++i) {
        v[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        v[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        v[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        v[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
      }
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dst + (c + i) * ldd + r, _mm256_permute2f128_ps(v[i], v[4 + i], 0x20));
        _mm256_storeu_ps(dst + (c + 4 + i) * ldd + r, _mm256_permute2f128_ps(v[i], v[4 + i], 0x31));
      }
    }
    for (; c < cols; ++c)
      for (int i = 0; i < 8; ++i) dst[c * ldd + r + i] = src[(r + i) * lds + c];
  }
  for (; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

}  // namespace tz::kernels::avx2
