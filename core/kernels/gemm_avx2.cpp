// The AVX2+FMA micro-kernel of our f32 GEMM (compiled with -mavx2 -mfma; called only when
// tz::simd_enabled()). Shape letters as in gemm.h: M, N, K.
//
// It computes one 6x16 tile of C from packed panels (see gemm.cpp for the packing):
//   Ap: kc steps of 6 consecutive A values  (column p of a 6-row sliver of op(A))
//   Bp: kc steps of 16 consecutive B values (row p of a 16-column sliver of op(B))
// Register budget (16 ymm registers of 8 floats each):
//   12 accumulators (6 rows x 2 vectors of 8 columns) + 2 B vectors + 1 broadcast A value.
// Each step p does 12 FMAs (192 flops) for 2 vector loads and 6 broadcasts, which is what
// lets the FMA units, not the loads, set the pace (Goto & van de Geijn, "Anatomy of
// High-Performance Matrix Multiplication", 2008; BLIS's haswell sgemm kernel is also 6x16).
// Numerics: each C element is one in-order FMA chain over p, like gemm_ref's loop, so the
// only difference from the reference is FMA's single rounding per step.
#include <immintrin.h>

#include "core/kernels/gemm.h"

namespace tz::kernels::detail {

void sgemm_micro_6x16_avx2(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, float alpha,
                           float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

  // One step of the rank-1 update: C[6, 16] += Ap[p, 0:6]^T * Bp[p, 0:16].
#define TZ_SGEMM_STEP(p)                                 \
  do {                                                   \
    const __m256 b0 = _mm256_load_ps(Bp + 16 * (p));     \
    const __m256 b1 = _mm256_load_ps(Bp + 16 * (p) + 8); \
    __m256 a = _mm256_broadcast_ss(Ap + 6 * (p) + 0);    \
    c00 = _mm256_fmadd_ps(a, b0, c00);                   \
    c01 = _mm256_fmadd_ps(a, b1, c01);                   \
    a = _mm256_broadcast_ss(Ap + 6 * (p) + 1);           \
    c10 = _mm256_fmadd_ps(a, b0, c10);                   \
    c11 = _mm256_fmadd_ps(a, b1, c11);                   \
    a = _mm256_broadcast_ss(Ap + 6 * (p) + 2);           \
    c20 = _mm256_fmadd_ps(a, b0, c20);                   \
    c21 = _mm256_fmadd_ps(a, b1, c21);                   \
    a = _mm256_broadcast_ss(Ap + 6 * (p) + 3);           \
    c30 = _mm256_fmadd_ps(a, b0, c30);                   \
    c31 = _mm256_fmadd_ps(a, b1, c31);                   \
    a = _mm256_broadcast_ss(Ap + 6 * (p) + 4);           \
    c40 = _mm256_fmadd_ps(a, b0, c40);                   \
    c41 = _mm256_fmadd_ps(a, b1, c41);                   \
    a = _mm256_broadcast_ss(Ap + 6 * (p) + 5);           \
    c50 = _mm256_fmadd_ps(a, b0, c50);                   \
    c51 = _mm256_fmadd_ps(a, b1, c51);                   \
  } while (0)

  // Start fetching the C tile now (6 rows, 64 bytes each, likely on 6 different pages
  // for wide C), so the write-back at the end does not stall on cache and TLB misses.
  for (int i = 0; i < 6; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 15), _MM_HINT_T0);
  }

  int64_t p = 0;
  // Unrolled by 4 so the loop overhead hides behind the FMAs; the prefetch pulls the B
  // panel a few steps ahead (A's sliver is small and stays in L1).
  for (; p + 4 <= kc; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(Bp + 16 * 8), _MM_HINT_T0);
    TZ_SGEMM_STEP(0);
    TZ_SGEMM_STEP(1);
    TZ_SGEMM_STEP(2);
    TZ_SGEMM_STEP(3);
    Ap += 24;
    Bp += 64;
  }
  for (; p < kc; ++p) {
    TZ_SGEMM_STEP(0);
    Ap += 6;
    Bp += 16;
  }
#undef TZ_SGEMM_STEP

  // Write back: C = alpha * acc (+ beta * C). beta == 0 never reads C (BLAS rule).
  const __m256 va = _mm256_set1_ps(alpha);
  auto store_row = [&](float* c, __m256 x0, __m256 x1) {
    x0 = _mm256_mul_ps(va, x0);
    x1 = _mm256_mul_ps(va, x1);
    if (beta != 0.0f) {
      const __m256 vb = _mm256_set1_ps(beta);
      x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), x0);
      x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), x1);
    }
    _mm256_storeu_ps(c, x0);
    _mm256_storeu_ps(c + 8, x1);
  };
  store_row(C + 0 * ldc, c00, c01);
  store_row(C + 1 * ldc, c10, c11);
  store_row(C + 2 * ldc, c20, c21);
  store_row(C + 3 * ldc, c30, c31);
  store_row(C + 4 * ldc, c40, c41);
  store_row(C + 5 * ldc, c50, c51);
}

}  // namespace tz::kernels::detail
