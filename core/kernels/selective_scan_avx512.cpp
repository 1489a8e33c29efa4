// The selective scan's block kernels (selective_scan_simd.inl) over 16-wide f32 AVX-512
// vectors: one vector holds a whole block of 16 channels. Compiled with -mavx512f/dq/bw/vl;
// the caller checks tz::simd_level() first.
#include <immintrin.h>

#include <algorithm>
#include <memory>

#include "core/kernels/scan.h"

namespace tz::kernels::avx512 {
namespace {

struct V {
  static constexpr int W = 16;
  using vec = __m512;
  using mask = __mmask16;
  static mask mask_n(int64_t n) { return n >= 16 ? mask(0xFFFF) : n <= 0 ? mask(0) : mask((1u << n) - 1); }
  static vec zero() { return _mm512_setzero_ps(); }
  static vec set1(float x) { return _mm512_set1_ps(x); }
  static vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, vec x) { _mm512_storeu_ps(p, x); }
  static vec load_m(const float* p, mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_m(float* p, vec x, mask m) { _mm512_mask_storeu_ps(p, m, x); }
  static vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  static vec sub(vec a, vec b) { return _mm512_sub_ps(a, b); }
  static vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static vec div(vec a, vec b) { return _mm512_div_ps(a, b); }
  static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  // e^x as vecmath.h's exp (n = round(x / ln 2), Cody-Waite reduction, Taylor series to r^7),
  // with 2^n applied by vscalefps, which rounds once, also into the subnormals, and gives 0 and
  // +inf past the range. The clamps keep +-inf out of the reduction; NaN passes through.
  static vec exp(vec x) {
    x = _mm512_max_ps(_mm512_set1_ps(-150.0f), _mm512_min_ps(_mm512_set1_ps(129.0f), x));
    const vec nf = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vec r = _mm512_fmadd_ps(nf, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(nf, _mm512_set1_ps(2.12194440e-4f), r);
    vec p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 5040), r, _mm512_set1_ps(1.0f / 720));
    for (float c : {1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    return _mm512_scalef_ps(p, nf);
  }
  // dst[k] += sum of the 16 lanes of row k, rows [16][16]: a tree of exchanges and adds
  // (512-bit halves, then 128-bit quarters, then pairs, then single lanes) ends with lane
  // 4c + j holding row c + 4j; one permutation puts the rows in order.
  static void add_row_sums16(float* dst, const float* rows) {
    __m512 s[8], q[4], w[2];
    for (int j = 0; j < 8; ++j) {  // s_j: rows 2j and 2j+1, 8 partial sums each
      const __m512 a = _mm512_loadu_ps(rows + 2 * j * 16), b = _mm512_loadu_ps(rows + (2 * j + 1) * 16);
      s[j] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    for (int j = 0; j < 4; ++j)  // q_j: rows 4j..4j+3, 4 partial sums each, one per quarter
      q[j] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * j], s[2 * j + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(s[2 * j], s[2 * j + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int j = 0; j < 2; ++j)  // w_j quarter c: rows 8j + c and 8j + 4 + c, 2 partial sums each
      w[j] = _mm512_add_ps(_mm512_shuffle_ps(q[2 * j], q[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(q[2 * j], q[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 t = _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_permutexvar_ps(order, t)));
  }
};

}  // namespace

#include "core/kernels/selective_scan_simd.inl"

}  // namespace tz::kernels::avx512
