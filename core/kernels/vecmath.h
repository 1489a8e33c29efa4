// vecmath.h: an 8-wide f32 AVX2+FMA vector type (F8) and vectorised exp, log, log1p, tanh,
// sigmoid, erfc and GELU written once over any vector type with F8's operations
// (vecmath_avx512.h adds the 16-wide F16).
//
// Include this header from *_avx2.cpp and *_avx512.cpp files ONLY (they are compiled with
// -mavx2 -mfma or wider and called only when tz::simd_enabled()). The math uses only
// correctly rounded steps (+ - * /, FMA, sqrt, round to integer, exponent bit moves), so
// every vector width gives the same value in every lane.
//
// Every function follows the same recipe: range-reduce the argument, evaluate a short
// polynomial with FMAs (Horner's rule), undo the reduction, then patch the special inputs
// (inf, 0, negative, NaN) with blends. Error bounds below were MEASURED by the test
// "vecmath approximation error sweep" in tests/core/test_elementwise.cpp (dense sweep vs
// std:: in double); relative errors are max |f~ - f| / |f| over the stated range.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

namespace tz::simd {

// ---- the vector type -----------------------------------------------------------------------
struct F8 {
  static constexpr int kLanes = 8;
  using Int = __m256i;  // the exponent arithmetic's integer lanes
  __m256 v;
  F8() = default;
  F8(__m256 x) : v(x) {}  // NOLINT: implicit on purpose
  explicit F8(float x) : v(_mm256_set1_ps(x)) {}
  static F8 load(const float* p) { return _mm256_loadu_ps(p); }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  // The first n (< 8) lanes, the rest zero: for the tail of a row without reading past it.
  static F8 load_partial(const float* p, int n) { return _mm256_maskload_ps(p, tail_mask(n)); }
  void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, tail_mask(n), v); }
  static F8 pow2i(__m256i n);  // (a member: __m256i has no namespace for lookup to find it by)
  static __m256i tail_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
};
inline F8 operator+(F8 a, F8 b) { return _mm256_add_ps(a.v, b.v); }
inline F8 operator-(F8 a, F8 b) { return _mm256_sub_ps(a.v, b.v); }
inline F8 operator*(F8 a, F8 b) { return _mm256_mul_ps(a.v, b.v); }
inline F8 operator/(F8 a, F8 b) { return _mm256_div_ps(a.v, b.v); }
inline F8 operator-(F8 a) { return _mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f)); }
inline F8 fma(F8 a, F8 b, F8 c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }  // a*b + c, one rounding
inline F8 fms(F8 a, F8 b, F8 c) { return _mm256_fmsub_ps(a.v, b.v, c.v); }  // a*b - c
inline F8 abs(F8 a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v); }
inline F8 sqrt(F8 a) { return _mm256_sqrt_ps(a.v); }
// NaN trap: _mm256_min_ps/_max_ps return their SECOND operand when either is NaN. We keep
// x second (min_nan(c, x)) so a NaN in x propagates.
inline F8 min_nan(F8 c, F8 x) { return _mm256_min_ps(c.v, x.v); }
inline F8 max_nan(F8 c, F8 x) { return _mm256_max_ps(c.v, x.v); }
// Lane masks (all-ones where true) and select(mask, a, b) = mask ? a : b.
inline F8 lt(F8 a, F8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ); }
inline F8 le(F8 a, F8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ); }
inline F8 gt(F8 a, F8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ); }
inline F8 ge(F8 a, F8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ); }
inline F8 eq(F8 a, F8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ); }
inline F8 isnan(F8 a) { return _mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q); }
inline F8 select(F8 mask, F8 a, F8 b) { return _mm256_blendv_ps(b.v, a.v, mask.v); }
inline F8 copysign(F8 mag, F8 sgn) {  // |mag| with sgn's sign bit
  __m256 s = _mm256_set1_ps(-0.0f);
  return _mm256_or_ps(_mm256_andnot_ps(s, mag.v), _mm256_and_ps(s, sgn.v));
}

// The exponent steps: round to the nearest integer (ties to even), its i32 value, 2^n for
// integer n in [-126, 127] built in the exponent bits, p 2^n applied in two halves, and
// x = m 2^e for normal x > 0 (m in [1, 2), e as a float).
inline F8 round_nearest(F8 x) { return _mm256_round_ps(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m256i to_int(F8 nf) { return _mm256_cvtps_epi32(nf.v); }
inline F8 F8::pow2i(__m256i n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}
inline F8 scale_pow2_halves(F8 p, __m256i n) {
  __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
  return p * F8::pow2i(n1) * F8::pow2i(n2);
}
inline void split_exponent(F8 x, F8& m, F8& e) {
  __m256i bits = _mm256_castps_si256(x.v);
  e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
  m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
}

// The vector types the math below accepts (F8 here, F16 in vecmath_avx512.h).
template <class V>
concept Vec = requires {
  V::kLanes;
  typename V::Int;
};

// ---- exp ---------------------------------------------------------------------------------
// e^x = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]. ln 2 is split
// in a short "hi" part (n * hi is exact) and a "lo" correction (Cody & Waite) so r keeps its
// low bits. e^r: Taylor series to r^7 (truncation < 1e-8 on this interval).
// 2^n is applied in two halves so results in the subnormal range (x down to -103.9) round
// once and correctly, and x > 88.72 overflows to +inf. Measured: max rel err 7.6e-8 (< 1 ulp)
// over [-87, 88.7]; subnormal results within 1 subnormal step; 0 below -104, +inf above
// 88.73, NaN -> NaN.
template <Vec V>
inline V exp_poly_reduced(V r) {  // e^r - 1 for |r| <= ln2/2, without the leading 1
  V p = fma(V(1.0f / 5040), r, V(1.0f / 720));
  p = fma(p, r, V(1.0f / 120));
  p = fma(p, r, V(1.0f / 24));
  p = fma(p, r, V(1.0f / 6));
  p = fma(p, r, V(0.5f));
  p = fma(p, r, V(1.0f));
  return p * r;
}
template <Vec V>
inline void exp_reduce(V x, V& r, typename V::Int& n) {
  const V ln2_hi(0.693359375f), ln2_lo(-2.12194440e-4f);
  V nf = round_nearest(x * V(1.44269504088896341f));
  r = fma(nf, -ln2_hi, x);
  r = fma(nf, -ln2_lo, r);
  n = to_int(nf);
}
template <Vec V>
inline V exp(V x) {
  x = max_nan(V(-104.0f), min_nan(V(89.0f), x));  // NaN stays NaN (see min_nan)
  V r;
  typename V::Int n;
  exp_reduce(x, r, n);
  return scale_pow2_halves(exp_poly_reduced(r) + V(1.0f), n);
}

// e^x - 1, accurate for small |x| (used by tanh). Valid for x in [-17, 20]:
// expm1 = 2^n (e^r - 1) + (2^n - 1), and for n = 0 it is just the polynomial, no cancellation.
template <Vec V>
inline V expm1_mid(V x) {
  V r;
  typename V::Int n;
  exp_reduce(x, r, n);
  V q = exp_poly_reduced(r);
  V s = V::pow2i(n);
  return fma(s, q, s - V(1.0f));
}

// ---- log ---------------------------------------------------------------------------------
// 2 atanh(s) = log((1 + s) / (1 - s)) = 2 (s + s^3/3 + s^5/5 + ...), |s| <= 1/3 (series to
// s^15, truncation < 1e-9). Shared by log and log1p.
template <Vec V>
inline V two_atanh_series(V s) {
  V s2 = s * s;
  V p = fma(V(1.0f / 15), s2, V(1.0f / 13));
  p = fma(p, s2, V(1.0f / 11));
  p = fma(p, s2, V(1.0f / 9));
  p = fma(p, s2, V(1.0f / 7));
  p = fma(p, s2, V(1.0f / 5));
  p = fma(p, s2, V(1.0f / 3));
  p = p * s2;
  V two_s = s + s;
  return fma(two_s, p, two_s);
}
// log x = e ln 2 + log m, with x = m 2^e, m in [sqrt(1/2), sqrt(2)); log m = 2 atanh((m-1)/(m+1)).
// Subnormal x is scaled by 2^23 first. Measured: max rel err 1.7e-7 over [1e-6, 10] (worst
// just above 1), 5.2e-8 over [1, 3e38], 4.8e-8 over subnormals. log 0 = -inf, log(<0) = NaN,
// log inf = inf, NaN -> NaN.
template <Vec V>
inline V log(V x) {
  auto tiny = lt(x, V(1.17549435e-38f));
  V xs = select(tiny, x * V(8388608.0f), x);  // 2^23
  V m, e;
  split_exponent(xs, m, e);  // m in [1, 2)
  auto big = gt(m, V(1.41421356f));
  m = select(big, m * V(0.5f), m);
  V ef = e + select(big, V(1.0f), V(0.0f)) - select(tiny, V(23.0f), V(0.0f));
  V logm = two_atanh_series((m - V(1.0f)) / (m + V(1.0f)));
  V y = fma(ef, V(0.693147180559945f), logm);
  // Special inputs.
  y = select(eq(x, V(0.0f)), V(-INFINITY), y);
  y = select(lt(x, V(0.0f)), V(NAN), y);
  y = select(eq(x, V(INFINITY)), x, y);
  return select(isnan(x), x, y);
}
// log(1 + u) for u in [0, 1] (softplus, log_sigmoid), relative accuracy down to tiny u:
// log(1 + u) = 2 atanh(u / (2 + u)). Measured through softplus below.
template <Vec V>
inline V log1p_unit(V u) {
  return two_atanh_series(u / (V(2.0f) + u));
}

// ---- tanh, sigmoid, softplus ---------------------------------------------------------------
// tanh|x| = m / (m + 2) with m = expm1(2|x|), which keeps relative accuracy at small |x|
// (1 - 2/(e^{2x} + 1) would cancel). |x| is capped at 9.1, where tanh rounds to 1 in f32.
// Measured: max rel err 2.2e-7 over [-10, 10] (also for |x| < 0.01); tanh(+-inf) = +-1.
template <Vec V>
inline V tanh(V x) {
  V ax = min_nan(V(9.1f), abs(x));
  V m = expm1_mid(ax + ax);
  return copysign(m / (m + V(2.0f)), x);
}
// sigmoid(x) = 1 / (1 + e^{-x}): e^{-x} overflowing to inf gives exactly 0, underflowing
// gives 1, so no branch is needed. Measured: max rel err 1.5e-7 over [-87, 30]; results
// below ~1e-38 (x < -87) flush to 0 instead of subnormals.
template <Vec V>
inline V sigmoid(V x) {
  return V(1.0f) / (V(1.0f) + exp(-x));
}
// softplus(x) = max(x, 0) + log1p(e^{-|x|}): never overflows, and keeps relative accuracy
// for very negative x (where it is ~e^x). Measured: max rel err 2.1e-7 over [-80, 80] (also
// for log_sigmoid(x) = -softplus(-x)).
template <Vec V>
inline V softplus(V x) {
  V t = log1p_unit(exp(-abs(x)));
  return max_nan(V(0.0f), x) + t;
}

// ---- erfc and GELU -------------------------------------------------------------------------
// erfc(z) e^{z^2} for z >= 0 as a degree-10 polynomial in t = 1/(1 + z/2). Coefficients: our
// own weighted least-squares fit (relative error, Chebyshev nodes in t, z in [0, 10]), rounded
// to f32; fit error 2.2e-8. The function is smooth in t, and ~t/(2 sqrt(pi)) as z -> inf.
template <Vec V>
inline V erfcx_poly(V z) {
  V t = V(1.0f) / fma(z, V(0.5f), V(1.0f));
  V p = fma(V(2.912312533e-02f), t, V(-2.173974390e-01f));
  p = fma(p, t, V(6.584729502e-01f));
  p = fma(p, t, V(-9.906471905e-01f));
  p = fma(p, t, V(7.046380752e-01f));
  p = fma(p, t, V(-2.634530515e-01f));
  p = fma(p, t, V(2.896475533e-01f));
  p = fma(p, t, V(2.223115107e-01f));
  p = fma(p, t, V(2.854666943e-01f));
  p = fma(p, t, V(2.818286082e-01f));
  return fma(p, t, V(9.159918494e-06f));
}
// Phi(x) = P(N(0,1) <= x) = erfc(-x / sqrt 2) / 2. We compute the small tail
// c = erfc(|x|/sqrt2)/2 = e^{-x^2/2} erfcx(|x|/sqrt2)/2 and return c for x < 0, 1 - c for x >= 0.
// Trap: x^2/2 is large, and its rounding error would be multiplied by x^2/2 inside exp; we
// split x*x = hi + lo exactly with an FMA and apply e^{-lo/2} ~ 1 - lo/2 separately.
template <Vec V>
inline V normal_cdf(V x) {
  // Beyond |x| = 20 the tail e^{-x^2/2} is exactly 0 in f32 (exp clamps at -104), so
  // gelu(-big) = -0 and gelu(-inf) = -inf * 0 = NaN, as in the reference.
  V ax = min_nan(V(20.0f), abs(x));
  V hi = ax * ax;
  V lo = fms(ax, ax, hi);  // exact: ax*ax - hi
  V g = exp(hi * V(-0.5f));
  g = fma(g, lo * V(-0.5f), g);
  V c = V(0.5f) * g * erfcx_poly(ax * V(0.70710678118654752f));
  return select(lt(x, V(0.0f)), c, V(1.0f) - c);
}
// gelu(x) = x Phi(x). Measured: max rel err 4.4e-7, max abs err 3.8e-7 over [-12, 12]
// (tail included).
template <Vec V>
inline V gelu(V x) {
  return x * normal_cdf(x);
}
// gelu_tanh(x) = x (1 + tanh(u)) / 2 = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3). The
// sigmoid form avoids 1 + tanh(u) cancelling for negative x. Measured: max abs err 5.2e-7
// over [-12, 12]; relative error grows to 1e-5 in the far negative tail (x < -6, |y| <
// 1e-10): there u's f32 rounding is multiplied by |2u| inside the exponential
// (conditioning, not the polynomial).
template <Vec V>
inline V gelu_tanh_u(V x) {
  V x2 = x * x;
  return x * fma(x2, V(0.7978845608028654f * 0.044715f), V(0.7978845608028654f));
}
template <Vec V>
inline V gelu_tanh(V x) {
  V u = gelu_tanh_u(x);
  return x * sigmoid(u + u);
}

}  // namespace tz::simd
