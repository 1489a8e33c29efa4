// AVX-512 tile primitives of the fused attention (f32); shapes and math in attention.h.
// Compiled with -mavx512f/dq/bw/vl -mfma; callers check tz::simd_level() first.
//
// The same two primitives as attention_avx2.cpp, on 16-float zmm vectors, rows of D
// contiguous floats, no packing:
//   attn_dots: a block of dot products, R <= 4 rows of A x 4 rows of B at a time (16 zmm
//              accumulators over D; 8 loads per 16 FMAs), each reduced once at the end;
//   attn_acc:  C += W B, R <= 4 rows of C x 64 columns (4 zmm) at a time, so that one pass
//              over the K rows of B covers a head of D <= 64: decoding one token reads each
//              cached value row once, where 16-column blocks read it D / 16 times.
// 32 zmm registers hold the 4 x 4 blocks that would spill on AVX2's 16 ymm registers. The
// D tail (D not a multiple of 16) uses masked loads and stores (masked lanes read 0).
// Summation order is fixed, so results are deterministic.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/attention.h"

// GCC 12's AVX-512 headers build the pass-through operand of the unmasked 256-bit extract
// from `_mm512_undefined_pd()`, which -Wuninitialized then reports (as in gemm_avx512.cpp):
// a header false positive, silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace tz::kernels::avx512 {

namespace {
inline __mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// The horizontal sums of a0..a3 in one __m128: 16 -> 8 lanes per vector, then pairwise.
inline __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  auto half = [](__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  };
  __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(half(a0), half(a1)), _mm256_hadd_ps(half(a2), half(a3)));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

// R rows of A against NC rows of B (NC = 4, or 1 for the last keys), full D.
template <int R, int NC>
inline void dots_block(float* S, int64_t lds, const float* A, int64_t lda, const float* Bm,
                       int64_t ldb, int64_t D, __mmask16 tail, float scale) {
  __m512 acc[R][NC];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) {
    __m512 b[NC];
    #pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) b[c] = _mm512_loadu_ps(Bm + c * ldb + d);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_loadu_ps(A + r * lda + d);
      #pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  if (d < D) {
    __m512 b[NC];
    #pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) b[c] = _mm512_maskz_loadu_ps(tail, Bm + c * ldb + d);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_maskz_loadu_ps(tail, A + r * lda + d);
      #pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if constexpr (NC == 4) {
      _mm_storeu_ps(S + r * lds, _mm_mul_ps(hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), _mm_set1_ps(scale)));
    } else {
      #pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) S[r * lds + c] = _mm512_reduce_add_ps(acc[r][c]) * scale;
    }
  }
}

template <int R>
inline void dots_rows(float* S, int64_t lds, const float* A, int64_t lda, const float* Bm,
                      int64_t ldb, int64_t N, int64_t D, __mmask16 tail, float scale) {
  int64_t n = 0;
  for (; n + 4 <= N; n += 4) dots_block<R, 4>(S + n, lds, A, lda, Bm + n * ldb, ldb, D, tail, scale);
  for (; n < N; ++n) dots_block<R, 1>(S + n, lds, A, lda, Bm + n * ldb, ldb, D, tail, scale);
}

// R rows of C, NV vectors of columns from C (the last one masked by `last`).
template <int R, int NV>
inline void acc_block(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t K,
                      const float* Bm, int64_t ldb, __mmask16 last, float alpha) {
  __m512 acc[R][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const float* b = Bm + k * ldb;
    __m512 bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v + 1 < NV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    bv[NV - 1] = _mm512_maskz_loadu_ps(last, b + 16 * (NV - 1));
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 w = _mm512_set1_ps(W[r * wm + k * wk]);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(w, bv[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      float* c = C + r * ldc + 16 * v;
      const __mmask16 m = v + 1 < NV ? __mmask16(0xFFFF) : last;
      _mm512_mask_storeu_ps(c, m, _mm512_fmadd_ps(va, acc[r][v], _mm512_maskz_loadu_ps(m, c)));
    }
}

template <int R>
inline void acc_rows(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t K,
                     const float* Bm, int64_t ldb, int64_t D, float alpha) {
  for (int64_t c = 0; c < D; c += 64) {
    const int64_t w = std::min<int64_t>(64, D - c), nv = (w + 15) / 16;
    const __mmask16 last = lanes(w - 16 * (nv - 1));
    switch (nv) {
      case 4: acc_block<R, 4>(C + c, ldc, W, wm, wk, K, Bm + c, ldb, last, alpha); break;
      case 3: acc_block<R, 3>(C + c, ldc, W, wm, wk, K, Bm + c, ldb, last, alpha); break;
      case 2: acc_block<R, 2>(C + c, ldc, W, wm, wk, K, Bm + c, ldb, last, alpha); break;
      default: acc_block<R, 1>(C + c, ldc, W, wm, wk, K, Bm + c, ldb, last, alpha); break;
    }
  }
}
}  // namespace

void attn_dots(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bm,
               int64_t ldb, int64_t N, int64_t D, float scale) {
  const __mmask16 tail = lanes(D % 16);
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) dots_rows<4>(S + m * lds, lds, A + m * lda, lda, Bm, ldb, N, D, tail, scale);
  switch (M - m) {
    case 3: dots_rows<3>(S + m * lds, lds, A + m * lda, lda, Bm, ldb, N, D, tail, scale); break;
    case 2: dots_rows<2>(S + m * lds, lds, A + m * lda, lda, Bm, ldb, N, D, tail, scale); break;
    case 1: dots_rows<1>(S + m * lds, lds, A + m * lda, lda, Bm, ldb, N, D, tail, scale); break;
    default: break;
  }
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

}  // namespace tz::kernels::avx512
