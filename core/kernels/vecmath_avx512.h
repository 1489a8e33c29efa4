// vecmath_avx512.h: F16, the 16-wide f32 AVX-512 vector type with F8's operations, so the
// math of vecmath.h (exp, log, tanh, sigmoid, softplus, GELU, ...) runs on it unchanged.
// Comparisons give a lane mask register (M16) instead of an all-ones vector; every value
// is computed by the same correctly rounded steps as on F8, so each lane equals F8's.
//
// Include from *_avx512.cpp files ONLY (compiled with -mavx512f/dq/bw/vl and called only
// when tz::simd_level() is avx512).
#pragma once

#include <immintrin.h>

#include "core/kernels/vecmath.h"

namespace tz::simd {

struct M16 {  // one bit per lane
  __mmask16 k;
};

struct F16 {
  static constexpr int kLanes = 16;
  using Int = __m512i;
  __m512 v;
  F16() = default;
  F16(__m512 x) : v(x) {}  // NOLINT: implicit on purpose
  explicit F16(float x) : v(_mm512_set1_ps(x)) {}
  static F16 load(const float* p) { return _mm512_loadu_ps(p); }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  // The first n (< 16) lanes, the rest zero; nothing past them is read or written.
  static F16 load_partial(const float* p, int n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
  void store_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
  static F16 pow2i(__m512i n);
  static __mmask16 tail_mask(int n) { return __mmask16((1u << n) - 1); }
};
inline F16 operator+(F16 a, F16 b) { return _mm512_add_ps(a.v, b.v); }
inline F16 operator-(F16 a, F16 b) { return _mm512_sub_ps(a.v, b.v); }
inline F16 operator*(F16 a, F16 b) { return _mm512_mul_ps(a.v, b.v); }
inline F16 operator/(F16 a, F16 b) { return _mm512_div_ps(a.v, b.v); }
inline F16 operator-(F16 a) { return _mm512_xor_ps(a.v, _mm512_set1_ps(-0.0f)); }
inline F16 fma(F16 a, F16 b, F16 c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }
inline F16 fms(F16 a, F16 b, F16 c) { return _mm512_fmsub_ps(a.v, b.v, c.v); }
inline F16 abs(F16 a) { return _mm512_andnot_ps(_mm512_set1_ps(-0.0f), a.v); }
inline F16 sqrt(F16 a) { return _mm512_sqrt_ps(a.v); }
// As on F8: the SECOND operand is returned when either is NaN.
inline F16 min_nan(F16 c, F16 x) { return _mm512_min_ps(c.v, x.v); }
inline F16 max_nan(F16 c, F16 x) { return _mm512_max_ps(c.v, x.v); }
inline M16 lt(F16 a, F16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
inline M16 le(F16 a, F16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)}; }
inline M16 gt(F16 a, F16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
inline M16 ge(F16 a, F16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }
inline M16 eq(F16 a, F16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)}; }
inline M16 isnan(F16 a) { return {_mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q)}; }
inline F16 select(M16 mask, F16 a, F16 b) { return _mm512_mask_blend_ps(mask.k, b.v, a.v); }
inline F16 copysign(F16 mag, F16 sgn) {
  const __m512 s = _mm512_set1_ps(-0.0f);
  return _mm512_or_ps(_mm512_andnot_ps(s, mag.v), _mm512_and_ps(s, sgn.v));
}

inline F16 round_nearest(F16 x) { return _mm512_roundscale_ps(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m512i to_int(F16 nf) { return _mm512_cvtps_epi32(nf.v); }
inline F16 F16::pow2i(__m512i n) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
}
inline F16 scale_pow2_halves(F16 p, __m512i n) {
  const __m512i n1 = _mm512_srai_epi32(n, 1), n2 = _mm512_sub_epi32(n, n1);
  return p * F16::pow2i(n1) * F16::pow2i(n2);
}
inline void split_exponent(F16 x, F16& m, F16& e) {
  const __m512i bits = _mm512_castps_si512(x.v);
  e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127)));
  m = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f800000)));
}

}  // namespace tz::simd
