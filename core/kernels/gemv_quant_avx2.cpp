// The AVX2+FMA GEMV kernels for quantized weights (compiled with -mavx2 -mfma): the
// f32-widening ones of gemv_quant_simd.inl over 8-float ymm vectors, and q8_0 x q8 with
// integer dot products (vpmaddubsw). See quant.h.
#include <immintrin.h>

#include <bit>

#include "core/kernels/quant.h"

namespace tz::kernels {
namespace avx2_quant {
namespace {

struct V {
  static constexpr int kLanes = 8;
  using type = __m256;
  static __m256 zero() { return _mm256_setzero_ps(); }
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 set1(float x) { return _mm256_set1_ps(x); }
  static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
  static __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
  static __m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(__m256 v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
  static __m256 widen_i8(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static __m256 widen_bf16(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
};

#include "core/kernels/gemv_quant_simd.inl"

// q8_0 x q8: one ymm is one block of 32. vpmaddubsw multiplies unsigned by signed bytes, so
// the sign of x moves onto the weight (|qx| times sign(qx) q = qx q), and adjacent pairs are
// summed to int16 (at most 2 * 127^2 = 32258: no saturation); vpmaddwd with ones sums pairs
// again to 8 int32 lanes, converted to f32 and scaled by d_b dx_b.
template <int M>
void q8q8_m(const QuantGemvArgs& g, const Q8Activations& xq, const int8_t* q, const float* scales, int64_t n0,
            int64_t n1) {
  const int64_t K = g.K, nb = K / kQ8Block;
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* w = q + n * K;
    const float* s = scales + n * nb;
    __m256 acc[M];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t k = b * kQ8Block;
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k));
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.q.data() + i * K + k));
        const __m256i ax = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.a.data() + i * K + k));
        const __m256i p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, x));
        const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[i] = _mm256_fmadd_ps(p, _mm256_set1_ps(s[b] * xq.d[size_t(i * nb + b)]), acc[i]);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) g.y[i * g.ldy + n] = V::hsum(acc[i]) + (g.bias ? g.bias[n] : 0.0f);
  }
}

}  // namespace
}  // namespace avx2_quant

void gemv_q8_0_avx2(const QuantGemvArgs& g, const Q8Activations&, const int8_t* q, const float* scales, int64_t n0,
                    int64_t n1) {
  avx2_quant::q8_dequant(g, q, scales, n0, n1);
}

void gemv_bf16_avx2(const QuantGemvArgs& g, const uint16_t* w, int64_t n0, int64_t n1) {
  avx2_quant::bf16_widen(g, w, n0, n1);
}

void gemv_q8q8_avx2(const QuantGemvArgs& g, const Q8Activations& xq, const int8_t* q, const float* scales, int64_t n0,
                    int64_t n1) {
  switch (g.M) {
    case 1:
      return avx2_quant::q8q8_m<1>(g, xq, q, scales, n0, n1);
    case 2:
      return avx2_quant::q8q8_m<2>(g, xq, q, scales, n0, n1);
    case 3:
      return avx2_quant::q8q8_m<3>(g, xq, q, scales, n0, n1);
    case 4:
      return avx2_quant::q8q8_m<4>(g, xq, q, scales, n0, n1);
    default:
      break;
  }
}

}  // namespace tz::kernels
