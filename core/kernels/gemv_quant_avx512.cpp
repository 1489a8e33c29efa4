// The AVX-512 GEMV kernels for quantized weights that need only AVX-512 F/BW (compiled with
// -mavx512f/dq/bw/vl -mfma): the f32-widening ones of gemv_quant_simd.inl over 16-float zmm
// vectors. The VNNI and BF16 kernels are in gemv_quant_avx512x.cpp. See quant.h.
#include <immintrin.h>

#include <bit>
#include <cmath>

#include "core/kernels/quant.h"

namespace tz::kernels {
namespace avx512_quant {
namespace {

struct V {
  static constexpr int kLanes = 16;
  using type = __m512;
  static __m512 zero() { return _mm512_setzero_ps(); }
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 set1(float x) { return _mm512_set1_ps(x); }
  static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
  static __m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
  static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(__m512 v) {  // 16 -> 8 -> 4 -> 2 -> 1, always the same pairs
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
  static __m512 widen_i8(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static __m512 widen_bf16(const uint16_t* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
};

#include "core/kernels/gemv_quant_simd.inl"

}  // namespace
}  // namespace avx512_quant

// quantize_activations_ref's steps on a block of 32 at a time: max|x| (exact in any order),
// d and 127 / max|x| as there, x * id rounded to nearest even by vcvtps2dq (the mode the
// plain form's magic-number rounding assumes), the f64 path for blocks below ~4e-37.
void quantize_row_avx512(int8_t* q, uint8_t* a, uint64_t* neg, float* d, float* dl, const float* x, int64_t K) {
  for (int64_t b = 0; b < K / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float db = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    int8_t* qb = q + b * kQ8Block;
    if (id > 3.0e38f) {
      for (int64_t k = 0; k < kQ8Block; ++k) qb[k] = int8_t(std::nearbyint(double(xb[k]) * 127.0 / double(amax)));
    } else {
      const __m512 s = _mm512_set1_ps(id);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x0, s))));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16),
                       _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x1, s))));
    }
    const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a + b * kQ8Block), _mm256_abs_epi8(qv));
    const uint64_t signs = uint32_t(_mm256_movemask_epi8(qv));
    neg[b * kQ8Block / 64] |= signs << (b * kQ8Block % 64);
    d[b] = db;
    _mm256_storeu_ps(dl + b * kQ8Block / 4, _mm256_set1_ps(db));
  }
}

void gemv_q8_0_avx512(const QuantGemvArgs& g, const Q8Activations&, const int8_t* q, const float* scales, int64_t n0,
                      int64_t n1) {
  avx512_quant::q8_dequant(g, q, scales, n0, n1);
}

void gemv_bf16_avx512(const QuantGemvArgs& g, const uint16_t* w, int64_t n0, int64_t n1) {
  avx512_quant::bf16_widen(g, w, n0, n1);
}

}  // namespace tz::kernels
