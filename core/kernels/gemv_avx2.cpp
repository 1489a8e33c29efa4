// The AVX2+FMA GEMV kernels (compiled with -mavx2 -mfma): gemv_simd.inl over 8-float ymm
// vectors; the K and N tails use vmaskmov loads/stores. See gemv.h.
#include <immintrin.h>

#include "core/kernels/gemv.h"

namespace tz::kernels {
namespace avx2_gemv {
namespace {

struct V {
  static constexpr int kLanes = 8;
  using type = __m256;
  static __m256 zero() { return _mm256_setzero_ps(); }
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static __m256 load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static __m256 set1(float x) { return _mm256_set1_ps(x); }
  static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
  static __m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(__m256 v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
  static void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
  static void store_n(float* p, __m256 v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
};

#include "core/kernels/gemv_simd.inl"

}  // namespace
}  // namespace avx2_gemv

void sgemv_avx2(const GemmArgs<float>& g, int64_t j0, int64_t j1) { avx2_gemv::gemv_impl(g, j0, j1); }

}  // namespace tz::kernels
