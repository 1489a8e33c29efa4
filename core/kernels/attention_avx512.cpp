// AVX-512 tile primitives of the fused attention (f32): attention_simd.inl over 16-float zmm
// vectors, with mask registers for the D tails; shapes and math in attention.h. Compiled
// with -mavx512f/dq/bw/vl -mfma; callers check tz::simd_level() first.
//
// Against the AVX2 primitives (B 8, H 4, T 256, D 64, causal, one core): forward 7.0 -> 5.0
// ms, backward 13.6 -> 7.4-9.3 ms, one decoding step over 272 cached keys 10 -> 5.6-7.8 us.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/kernels/attention.h"
#include "core/kernels/vecmath_avx512.h"

namespace tz::kernels::avx512 {
namespace {

struct V {
  static constexpr int kLanes = 16;
  static constexpr int kDotRows = 4;        // 4 x 4 dot accumulators + 4 + 1 operands of 32 zmm
  static constexpr int kAccVecs = 4;        // 4 rows x 64 columns
  static constexpr int kAccOneRowVecs = 4;  // one row (decoding) x 64 columns
  static constexpr int kDotTRows = 8;       // 8 rows x 2 vectors of keys: 16 accumulators
  static constexpr int kDotTVecs = 2;
  using type = __m512;
  using mask = __mmask16;
  static __m512 zero() { return _mm512_setzero_ps(); }
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __mmask16 mask_n(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }
  static __m512 load_m(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_m(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
  static __m512 set1(float x) { return _mm512_set1_ps(x); }
  static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
  static __m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
  static float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
  // 16 -> 8 lanes per vector, then pairwise as on AVX2.
  static __m256 half(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
  static __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(half(a0), half(a1)), _mm256_hadd_ps(half(a2), half(a3)));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  }
  static int64_t one_row_keys(int64_t N, int64_t D);
  static void dots_one_row(float* S, const float* A, const float* Bm, int64_t ldb, int64_t N, int64_t D, __mmask16 tail,
                           float scale);
};

// One query row (decoding) against 16 keys at a time. Each key's accumulator is the FMA chain
// of dots_block, and its 16 lanes are summed in exactly hsum4's order (lanes l + l+8, then
// adjacent pairs, then pairs of pairs, then the two 128-bit halves), so the scores are those
// of dots_block<1, 4> bit for bit; but the 16 reductions are done together, by shuffles
// across the accumulators (a transpose), with one store, instead of hadds per 4 keys. The
// query row stays in ND registers (D <= 16 ND), so a key costs its own loads only.
template <int ND>
void dots_one_row_nd(float* S, const float* A, const float* Bm, int64_t ldb, int64_t N, int64_t D, __mmask16 tail,
                     float scale) {
  const __m512i order = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
  __m512 a[ND];
  __mmask16 m[ND];
#pragma GCC unroll 4
  for (int v = 0; v < ND; ++v) {
    m[v] = 16 * (v + 1) <= D ? __mmask16(0xFFFF) : tail;
    a[v] = _mm512_maskz_loadu_ps(m[v], A + 16 * v);
  }
  for (int64_t n = 0; n + 16 <= N; n += 16) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int c = 0; c < 16; ++c, Bm += ldb) {
      acc[c] = _mm512_setzero_ps();
#pragma GCC unroll 4
      for (int v = 0; v < ND; ++v) acc[c] = _mm512_fmadd_ps(a[v], _mm512_maskz_loadu_ps(m[v], Bm + 16 * v), acc[c]);
    }
    // Lanes l + l+8 of keys 2i, 2i+1: p[i] = [key 2i's 8 sums | key 2i+1's 8 sums].
    __m512 p[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i)
      p[i] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * i], acc[2 * i + 1], 0x44),
                           _mm512_shuffle_f32x4(acc[2 * i], acc[2 * i + 1], 0xEE));
    // Adjacent pairs, twice, within 128-bit lanes (hsum4's two hadds).
    __m512 q[4], r[2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i)
      q[i] = _mm512_add_ps(_mm512_shuffle_ps(p[2 * i], p[2 * i + 1], 0x88),
                           _mm512_shuffle_ps(p[2 * i], p[2 * i + 1], 0xDD));
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i)
      r[i] = _mm512_add_ps(_mm512_shuffle_ps(q[2 * i], q[2 * i + 1], 0x88),
                           _mm512_shuffle_ps(q[2 * i], q[2 * i + 1], 0xDD));
    // The two halves: lanes hold keys 0 2 4 6 1 3 5 7 8 10 12 14 9 11 13 15.
    const __m512 f = _mm512_add_ps(_mm512_shuffle_f32x4(r[0], r[1], 0x88), _mm512_shuffle_f32x4(r[0], r[1], 0xDD));
    _mm512_storeu_ps(S + n, _mm512_permutexvar_ps(order, _mm512_mul_ps(f, _mm512_set1_ps(scale))));
  }
}

int64_t V::one_row_keys(int64_t N, int64_t D) { return D <= 64 ? N / 16 * 16 : 0; }

void V::dots_one_row(float* S, const float* A, const float* Bm, int64_t ldb, int64_t N, int64_t D, __mmask16 tail,
                     float scale) {
  switch ((D + 15) / 16) {
    case 1:
      return dots_one_row_nd<1>(S, A, Bm, ldb, N, D, tail, scale);
    case 2:
      return dots_one_row_nd<2>(S, A, Bm, ldb, N, D, tail, scale);
    case 3:
      return dots_one_row_nd<3>(S, A, Bm, ldb, N, D, tail, scale);
    case 4:
      return dots_one_row_nd<4>(S, A, Bm, ldb, N, D, tail, scale);
    default:
      break;  // one_row_keys gave 0
  }
}

}  // namespace

#include "core/kernels/attention_simd.inl"

namespace {
// e^z for z in [avx2::kAttnExpCut, 0] or NaN: the steps of simd::exp (vecmath.h) on F16.
// Results there are normal, so 2^n is applied at once (exact, as simd::exp's two halves
// are), and each lane equals the AVX2 form's.
inline __m512 exp_cut_range(__m512 z) {
  simd::F16 r;
  __m512i n;
  simd::exp_reduce(simd::F16(z), r, n);
  return ((simd::exp_poly_reduced(r) + simd::F16(1.0f)) * simd::F16::pow2i(n)).v;
}
}  // namespace

namespace {
// avx2's exp_cut on 16 lanes: 0 below the cut, NaN stays NaN.
inline __m512 exp_cut(__m512 z) {
  const __m512 cut = _mm512_set1_ps(avx2::kAttnExpCut);
  const __mmask16 below = _mm512_cmp_ps_mask(z, cut, _CMP_LT_OQ);  // NaN is not below
  return _mm512_mask_blend_ps(below, exp_cut_range(_mm512_max_ps(cut, z)), _mm512_setzero_ps());
}
// z = x - m over a row of n, the masked tail lanes -inf (below the cut: 0, stored nowhere).
template <class F>
inline void exp_row(float* y, const float* x, int64_t n, float m, F&& each) {
  const __m512 vm = _mm512_set1_ps(m);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, each(exp_cut(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm))));
  if (i < n) {
    const __mmask16 k = __mmask16((1u << (n - i)) - 1);
    const __m512 z = _mm512_mask_sub_ps(_mm512_set1_ps(-INFINITY), k, _mm512_maskz_loadu_ps(k, x + i), vm);
    _mm512_mask_storeu_ps(y + i, k, each(exp_cut(z)));
  }
}
}  // namespace

// avx2::attn_exp on 16 lanes (attention.h): the same values, summed in f64 in another order.
double attn_exp(float* y, const float* x, int64_t n, float m) {
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  exp_row(y, x, n, m, [&](__m512 e) {
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    return e;
  });
  const __m512d s = _mm512_add_pd(lo, hi);
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, s);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

void attn_exp_rows(float* y, int64_t ldy, int64_t rows, int64_t n, const float* m) {
  for (int64_t r = 0; r < rows; ++r) exp_row(y + r * ldy, y + r * ldy, n, m[r], [](__m512 e) { return e; });
}

}  // namespace tz::kernels::avx512
