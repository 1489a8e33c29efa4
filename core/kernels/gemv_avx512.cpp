// The AVX-512 GEMV kernels (compiled with -mavx512f/dq/bw/vl -mfma): gemv_simd.inl over
// 16-float zmm vectors; the K and N tails use mask registers. See gemv.h.
#include <immintrin.h>

#include "core/kernels/gemv.h"

namespace tz::kernels {
namespace avx512_gemv {
namespace {

struct V {
  static constexpr int kLanes = 16;
  using type = __m512;
  static __m512 zero() { return _mm512_setzero_ps(); }
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __mmask16 mask(int n) { return __mmask16((1u << n) - 1); }
  static __m512 load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static __m512 set1(float x) { return _mm512_set1_ps(x); }
  static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
  static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(__m512 v) {
    // 16 -> 8 -> 4 -> 2 -> 1, always the same pairs.
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
  static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, __m512 v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
};

#include "core/kernels/gemv_simd.inl"

}  // namespace
}  // namespace avx512_gemv

void sgemv_avx512(const GemmArgs<float>& g, int64_t j0, int64_t j1) { avx512_gemv::gemv_impl(g, j0, j1); }

}  // namespace tz::kernels
