// The AVX-512 micro-kernels of our f32 GEMM (compiled with -mavx512f/dq/bw/vl -mfma; called
// only when tz::simd_level() == SimdLevel::avx512). Shape letters as in gemm.h: M, N, K.
//
// Same contract as the 6x16 AVX2 kernel (gemm_avx2.cpp), with 512-bit registers of 16
// floats: one MR x 32 tile of C from packed panels (see gemm.cpp for the packing):
//   Ap: kc steps of MR consecutive A values  (column p of an MR-row sliver of op(A))
//   Bp: kc steps of 32 consecutive B values  (row p of a 32-column sliver of op(B))
// Register budget (32 zmm registers):
//   2*MR accumulators (MR rows x 2 vectors of 16 columns) + 2 B vectors + the broadcast A
//   values (the compiler folds most broadcasts into the FMA as a {1to16} memory operand).
//   MR = 12 uses 24 + 2 + 1 = 27 registers.
// Each step p does 24 FMAs for 2 vector loads and 12 broadcasts. Zen 5 runs two 512-bit
// FMAs per cycle with a 4-cycle latency, so at least 8 independent accumulators keep both
// units busy; 24 of them also amortise the loads. Measured on the Zen 5 dev machine (CPU
// time of one thread, M = 2048 GPT shapes, all transposes): 8x32, 12x32 and 14x32 (28
// accumulators, 31 registers) all ran 130-185 GFLOP/s, within the noise of a shared
// machine; 12x32 was best on average, and is the one instantiated below.
// Numerics: each C element is one in-order FMA chain over p, exactly like the AVX2 kernel
// and gemm_ref's loop (FMA's single rounding per step is the only difference).
#include <immintrin.h>

#include "core/kernels/gemm.h"

namespace tz::kernels::detail {

namespace {

template <int MR>
void micro_x32(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, float alpha, float beta) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();

    // Start fetching the C tile now (MR rows of 128 bytes), so the write-back at the end does
    // not stall on cache and TLB misses.
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 31), _MM_HINT_T0);
  }

  // One step of the rank-1 update: C[MR, 32] += Ap[p, 0:MR]^T * Bp[p, 0:32].
  auto step = [&](const float* a, const float* b) __attribute__((always_inline)) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
  };

  int64_t p = 0;
  // Unrolled by 4; the prefetch pulls the B panel a few steps ahead (the A sliver is read
  // once per tile and streams from L2).
  for (; p + 4 <= kc; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(Bp + 32 * 8), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(Bp + 32 * 8 + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(Ap + MR * 8), _MM_HINT_T0);
    step(Ap, Bp);
    step(Ap + MR, Bp + 32);
    step(Ap + 2 * MR, Bp + 64);
    step(Ap + 3 * MR, Bp + 96);
    Ap += 4 * MR;
    Bp += 128;
  }
  for (; p < kc; ++p) {
    step(Ap, Bp);
    Ap += MR;
    Bp += 32;
  }

  // Write back: C = alpha * acc (+ beta * C). beta == 0 never reads C (BLAS rule).
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      _mm512_storeu_ps(C + i * ldc, _mm512_mul_ps(va, c0[i]));
      _mm512_storeu_ps(C + i * ldc + 16, _mm512_mul_ps(va, c1[i]));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* c = C + i * ldc;
      _mm512_storeu_ps(c, _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), _mm512_mul_ps(va, c0[i])));
      _mm512_storeu_ps(c + 16, _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + 16), _mm512_mul_ps(va, c1[i])));
    }
  }
}

// Transposes a 16 x 16 block held as 16 row vectors: r[i][j] -> r[j][i]. Four stages:
// unpack pairs of rows, shuffle 2-float pairs (each 128-bit lane then holds a 4 x 4
// transposed block), then two rounds of 128-bit lane shuffles put the lanes in place.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  // u[4k + m], lane L: column 4L + m of rows 4k .. 4k + 3.
  for (int k = 0; k < 4; ++k) {
    u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  // Column 4L + m = lane L of u[m], u[4 + m], u[8 + m], u[12 + m].
  for (int m = 0; m < 4; ++m) {
    const __m512 p0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
    const __m512 p1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
    const __m512 q0 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
    const __m512 q1 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
    r[m] = _mm512_shuffle_f32x4(p0, q0, 0x88);
    r[4 + m] = _mm512_shuffle_f32x4(p1, q1, 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(p0, q0, 0xDD);
    r[12 + m] = _mm512_shuffle_f32x4(p1, q1, 0xDD);
  }
}

// Packs `rows` (<= 16) stored rows of `kc` contiguous floats (row i at src + i * ld) into
// p-major order: dst[p * width + i] = src[i * ld + p] for i < lanes (<= 16; lanes past
// `rows` get zeros). 16 x 16 blocks through registers instead of kc * rows scalar stores
// with a stride.
// The rows a 16 x 16 block reads are far apart (an activation's or a weight's rows), more
// streams than the hardware prefetcher follows: each row's line 64 floats (4 blocks) ahead is
// asked for in software. Measured on Zen 5 as packing's share of a large GPT training step
// (perf): 2.5 -> 1.6-1.8 %. (Prefetching rows ahead in the [K, N] copy of B gained nothing.)
constexpr int64_t kPackAhead = 64;
inline void pack_transpose(float* dst, int64_t width, const float* src, int64_t ld, int rows, int lanes, int64_t kc) {
  const __mmask16 row_mask = __mmask16((1u << lanes) - 1);
  for (int64_t p = 0; p < kc; p += 16) {
    const int n = int(kc - p < 16 ? kc - p : 16);
    const __mmask16 m = __mmask16((1u << n) - 1);
    __m512 r[16];
    for (int i = 0; i < 16; ++i) {
      if (i < rows) _mm_prefetch(reinterpret_cast<const char*>(src + i * ld + p + kPackAhead), _MM_HINT_T0);
      r[i] = i < rows ? _mm512_maskz_loadu_ps(m, src + i * ld + p) : _mm512_setzero_ps();
    }
    transpose16(r);
    for (int c = 0; c < n; ++c) _mm512_mask_storeu_ps(dst + (p + c) * width, row_mask, r[c]);
  }
}

}  // namespace

void sgemm_pack_a12_avx512(float* dst, const float* A, int64_t lda, int64_t kc) {
  pack_transpose(dst, 12, A, lda, 12, 12, kc);
}

void sgemm_pack_a12_trans_avx512(float* Ap, const float* A, int64_t lda, int64_t mc, int64_t kc) {
  // Step p of every sliver comes from one stored row of A: read the rows left to right (the
  // hardware prefetcher follows them) and scatter their 12-value pieces. Four steps at a time
  // a sliver's 48 values are contiguous: three full-width stores instead of four masked ones
  // that straddle cache lines.
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19);
  const __m512i second = _mm512_setr_epi32(4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i third = _mm512_setr_epi32(8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27);
  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    const float* src = A + p * lda;
    for (int64_t s = 0; s * 12 < mc; ++s) {
      const int64_t rows = mc - s * 12 < 12 ? mc - s * 12 : 12;
      const __mmask16 m = __mmask16((1u << rows) - 1);  // rows past mc: zeros
      const __m512 r0 = _mm512_maskz_loadu_ps(m, src + s * 12), r1 = _mm512_maskz_loadu_ps(m, src + lda + s * 12);
      const __m512 r2 = _mm512_maskz_loadu_ps(m, src + 2 * lda + s * 12);
      const __m512 r3 = _mm512_maskz_loadu_ps(m, src + 3 * lda + s * 12);
      float* dst = Ap + s * 12 * kc + p * 12;
      _mm512_storeu_ps(dst, _mm512_permutex2var_ps(r0, first, r1));
      _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(r1, second, r2));
      _mm512_storeu_ps(dst + 32, _mm512_permutex2var_ps(r2, third, r3));
    }
  }
  for (; p < kc; ++p) {
    const float* src = A + p * lda;
    for (int64_t s = 0; s * 12 < mc; ++s) {
      const int64_t rows = mc - s * 12 < 12 ? mc - s * 12 : 12;
      const __m512 v = _mm512_maskz_loadu_ps(__mmask16((1u << rows) - 1), src + s * 12);
      _mm512_mask_storeu_ps(Ap + s * 12 * kc + p * 12, 0x0FFF, v);
    }
  }
}

void sgemm_pack_b32_avx512(float* dst, const float* B, int64_t ldb, bool trans_b, int64_t kc) {
  if (!trans_b) {  // B stored [K, N]: the 32 values of step p are contiguous
    for (int64_t p = 0; p < kc; ++p) {
      _mm512_store_ps(dst + p * 32, _mm512_loadu_ps(B + p * ldb));
      _mm512_store_ps(dst + p * 32 + 16, _mm512_loadu_ps(B + p * ldb + 16));
    }
  } else {  // B stored [N, K]: two 16-row halves, each transposed into 16 of the 32 lanes
    pack_transpose(dst, 32, B, ldb, 16, 16, kc);
    pack_transpose(dst + 16, 32, B + 16 * ldb, ldb, 16, 16, kc);
  }
}

void sgemm_micro_12x32_avx512(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, float alpha,
                              float beta) {
  micro_x32<12>(kc, Ap, Bp, C, ldc, alpha, beta);
}

}  // namespace tz::kernels::detail
