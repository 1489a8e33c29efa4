// AVX-512 tile primitives of the fused attention (f32): attention_simd.inl over 16-float zmm
// vectors, with mask registers for the D tails; shapes and math in attention.h. Compiled
// with -mavx512f/dq/bw/vl -mfma; callers check tz::simd_level() first.
//
// Against the AVX2 primitives (B 8, H 4, T 256, D 64, causal, one core): forward 7.0 -> 5.0
// ms, backward 13.6 -> 7.4-9.3 ms, one decoding step over 272 cached keys 10 -> 5.6-7.8 us.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/attention.h"

namespace tz::kernels::avx512 {
namespace {

struct V {
  static constexpr int kLanes = 16;
  static constexpr int kDotRows = 4;  // 4 x 4 dot accumulators + 4 + 1 operands of 32 zmm
  static constexpr int kAccVecs = 4;  // 4 rows x 64 columns
  using type = __m512;
  using mask = __mmask16;
  static __m512 zero() { return _mm512_setzero_ps(); }
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __mmask16 mask_n(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }
  static __m512 load_m(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_m(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
  static __m512 set1(float x) { return _mm512_set1_ps(x); }
  static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
  // 16 -> 8 lanes per vector, then pairwise as on AVX2.
  static __m256 half(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
  static __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(half(a0), half(a1)), _mm256_hadd_ps(half(a2), half(a3)));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  }
};

}  // namespace

#include "core/kernels/attention_simd.inl"

}  // namespace tz::kernels::avx512
