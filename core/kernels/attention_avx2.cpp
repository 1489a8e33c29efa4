// AVX2+FMA tile primitives of the fused attention (f32); shapes and math in attention.h.
// Compiled with -mavx2 -mfma; callers check tz::simd_enabled() first.
//
// Both primitives work on rows of D contiguous floats and need no packing:
//   attn_dots: a block of dot products, 2 rows of A x 4 rows of B at a time (8 vector
//              accumulators; 6 loads per 8 FMAs), each reduced once at the end;
//   attn_acc:  C += W B, 4 rows of C x 16 columns at a time (8 accumulators; per k, one
//              broadcast of W per row and 2 loads of B).
// The D tail (D not a multiple of 8) uses masked loads, whose masked lanes read as 0.
// Summation order is fixed, so results are deterministic.
// Measured alternative (B 8, H 4, T 256, D 64, causal, 1 thread, 64 x 64 tiles): packing
// each tile and running the 6x16 GEMM micro-kernel of gemm_avx2.cpp instead gave the same
// time within noise (forward ~7.2 ms, forward + backward ~26 ms, ~48 GFLOP/s), so we keep
// these simpler kernels that need no packing or scratch buffers. Wider register blocks (3
// rows of dots, 6 rows of acc) were slower.
#include <immintrin.h>

#include <cmath>

#include "core/kernels/attention.h"
#include "core/kernels/vecmath.h"

namespace tz::kernels::avx2 {

using simd::F8;

namespace {
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// The four horizontal sums of a0..a3 in one __m128.
inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

// R rows of A against NC rows of B (R <= 2, NC <= 4), full D.
template <int R, int NC>
inline void dots_block(float* S, int64_t lds, const float* A, int64_t lda, const float* Bm,
                       int64_t ldb, int64_t D, __m256i tail, float scale) {
  __m256 acc[R][NC];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    __m256 b[NC];
    #pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) b[c] = _mm256_loadu_ps(Bm + c * ldb + d);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      __m256 a = _mm256_loadu_ps(A + r * lda + d);
      #pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  if (d < D) {  // masked tail: lanes past D load 0
    __m256 b[NC];
    #pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) b[c] = _mm256_maskload_ps(Bm + c * ldb + d, tail);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      __m256 a = _mm256_maskload_ps(A + r * lda + d, tail);
      #pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if constexpr (NC == 4) {
      __m128 s = _mm_mul_ps(hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), _mm_set1_ps(scale));
      _mm_storeu_ps(S + r * lds, s);
    } else {
      #pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) S[r * lds + c] = hsum(acc[r][c]) * scale;
    }
  }
}

template <int R>
inline void dots_rows(float* S, int64_t lds, const float* A, int64_t lda, const float* Bm,
                      int64_t ldb, int64_t N, int64_t D, __m256i tail, float scale) {
  int64_t n = 0;
  for (; n + 4 <= N; n += 4) dots_block<R, 4>(S + n, lds, A, lda, Bm + n * ldb, ldb, D, tail, scale);
  for (; n < N; ++n) dots_block<R, 1>(S + n, lds, A, lda, Bm + n * ldb, ldb, D, tail, scale);
}

// R rows of C (R <= 4), columns [c, c + 16) of which the first `cw` exist (Full: cw = 16).
template <int R, bool Full>
inline void acc_block(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t K,
                      const float* Bm, int64_t ldb, __m256i m0, __m256i m1, bool two, float alpha) {
  __m256 acc[R][2];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const float* b = Bm + k * ldb;
    __m256 b0, b1;
    if constexpr (Full) {
      b0 = _mm256_loadu_ps(b);
      b1 = _mm256_loadu_ps(b + 8);
    } else {
      b0 = _mm256_maskload_ps(b, m0);
      b1 = two ? _mm256_maskload_ps(b + 8, m1) : _mm256_setzero_ps();
    }
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      __m256 w = _mm256_broadcast_ss(W + r * wm + k * wk);
      acc[r][0] = _mm256_fmadd_ps(w, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(w, b1, acc[r][1]);
    }
  }
  __m256 va = _mm256_set1_ps(alpha);
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float* c = C + r * ldc;
    if constexpr (Full) {
      _mm256_storeu_ps(c, _mm256_fmadd_ps(va, acc[r][0], _mm256_loadu_ps(c)));
      _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, acc[r][1], _mm256_loadu_ps(c + 8)));
    } else {
      _mm256_maskstore_ps(c, m0, _mm256_fmadd_ps(va, acc[r][0], _mm256_maskload_ps(c, m0)));
      if (two)
        _mm256_maskstore_ps(c + 8, m1, _mm256_fmadd_ps(va, acc[r][1], _mm256_maskload_ps(c + 8, m1)));
    }
  }
}

template <int R>
inline void acc_rows(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t K,
                     const float* Bm, int64_t ldb, int64_t D, float alpha) {
  int64_t c = 0;
  __m256i all = _mm256_set1_epi32(-1);
  for (; c + 16 <= D; c += 16) acc_block<R, true>(C + c, ldc, W, wm, wk, K, Bm + c, ldb, all, all, true, alpha);
  if (c < D) {
    int cw = int(D - c);
    __m256i m0 = F8::tail_mask(cw < 8 ? cw : 8), m1 = F8::tail_mask(cw > 8 ? cw - 8 : 0);
    acc_block<R, false>(C + c, ldc, W, wm, wk, K, Bm + c, ldb, m0, m1, cw > 8, alpha);
  }
}
}  // namespace

void attn_dots(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bm,
               int64_t ldb, int64_t N, int64_t D, float scale) {
  __m256i tail = F8::tail_mask(int(D % 8));
  int64_t m = 0;
  for (; m + 2 <= M; m += 2) dots_rows<2>(S + m * lds, lds, A + m * lda, lda, Bm, ldb, N, D, tail, scale);
  if (m < M) dots_rows<1>(S + m * lds, lds, A + m * lda, lda, Bm, ldb, N, D, tail, scale);
}

void attn_acc(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t M, int64_t K,
              const float* Bm, int64_t ldb, int64_t D, float alpha) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) acc_rows<4>(C + m * ldc, ldc, W + m * wm, wm, wk, K, Bm, ldb, D, alpha);
  switch (M - m) {
    case 3: acc_rows<3>(C + m * ldc, ldc, W + m * wm, wm, wk, K, Bm, ldb, D, alpha); break;
    case 2: acc_rows<2>(C + m * ldc, ldc, W + m * wm, wm, wk, K, Bm, ldb, D, alpha); break;
    case 1: acc_rows<1>(C + m * ldc, ldc, W + m * wm, wm, wk, K, Bm, ldb, D, alpha); break;
    default: break;
  }
}

}  // namespace tz::kernels::avx2
