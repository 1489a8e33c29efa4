// GEMM: the general matrix product C = alpha * op(A) op(B) + beta * C.
//
// Shape letters (used in every comment of gemm*.cpp):
//   M = rows of op(A) and C, N = columns of op(B) and C, K = the summed (inner) dim.
// All matrices are row-major with a leading dimension (the distance in elements between
// two rows as stored): A is stored [M, K] (lda >= K), or [K, M] when trans_a (lda >= M);
// B is stored [K, N] (ldb >= N), or [N, K] when trans_b (ldb >= K); C is [M, N] (ldc >= N).
//
// BLAS convention for beta: when beta == 0, C is written without being read, so NaN or
// garbage already in C does not leak into the result (fresh tensors are NaN-filled in tests).
//
// Three implementations, callable separately so tests and bench/bench_gemm.cpp compare them:
//   gemm_ref  - the naive triple loop, the reference a student reads first;
//   gemm_own  - our GotoBLAS/BLIS-structured GEMM (cache blocking, packed panels, a 12x32
//               AVX-512 or 6x16 AVX2+FMA register-blocked micro-kernel for f32, by
//               tz::simd_level(); a scalar micro-kernel for f64 and for f32 when SIMD is
//               off);
//   gemm_blas - OpenBLAS's cblas_?gemm (only when built with TZ_HAVE_OPENBLAS).
// gemm() picks one of them (see gemm.cpp for the measured rule).
#pragma once

#include <cstdint>

namespace tz::kernels {

// The operands of one GEMM call. Order follows the project's kernel convention: output,
// inputs, sizes, then the scalars.
template <class T>
struct GemmArgs {
  T* C;
  int64_t ldc;
  const T* A;
  int64_t lda;
  bool trans_a;
  const T* B;
  int64_t ldb;
  bool trans_b;
  int64_t M, N, K;
  T alpha = 1;
  T beta = 0;
  // When set: C = alpha op(A) op(B) + (beta C + bias), bias [N] added to every row. The
  // packed path adds it to each C tile just before its micro-kernel, with no pass over C.
  const T* bias = nullptr;
};

// Naive reference: for each (i, j), a dot product over K in order, accumulated in T.
void gemm_ref(const GemmArgs<float>& g);
void gemm_ref(const GemmArgs<double>& g);

// Our own blocked and packed GEMM (threads via tz::parallel_for; serial inside a parallel
// region). f32 uses the AVX-512 micro-kernel when tz::simd_level() is avx512, the AVX2 one
// when it is avx2, the portable one when SIMD is off.
void gemm_own(const GemmArgs<float>& g);
void gemm_own(const GemmArgs<double>& g);

// OpenBLAS (cblas_sgemm / cblas_dgemm). Throws tz::Error when built without OpenBLAS.
bool gemm_blas_available();
void gemm_blas(const GemmArgs<float>& g);
void gemm_blas(const GemmArgs<double>& g);

// The dispatcher every tensor op calls: OpenBLAS or ours, by size (never OpenBLAS inside
// a parallel region, where it would oversubscribe the cores).
void gemm(const GemmArgs<float>& g);
// set_blas_enabled(false) keeps every product on our own GEMM, whose f64 results are the
// same on any x86 CPU (OpenBLAS picks its kernels by CPU model); tests that compare
// recorded f64 numbers bit for bit use it.
void set_blas_enabled(bool on);
bool blas_enabled();
void gemm(const GemmArgs<double>& g);

// C = alpha op(A) op(B) + beta C (row-major) through the dispatcher, for the small products
// inside other kernels: an empty C is left alone, and K = 0 leaves C as it is (beta 1) or
// zeros it (beta 0).
template <class T>
void gemm_rows(T* C, int64_t ldc, const T* A, int64_t lda, bool trans_a, const T* B, int64_t ldb, bool trans_b,
               int64_t M, int64_t N, int64_t K, T alpha, T beta);

// Checks sizes and leading dimensions; throws tz::Error naming `op` when they are invalid.
template <class T>
void gemm_check(const GemmArgs<T>& g, const char* op);

namespace detail {
// The AVX2+FMA micro-kernel (gemm_avx2.cpp): C[6, 16] = alpha * Ap^T Bp + beta * C, where
// Ap holds kc columns of 6 packed A values and Bp holds kc rows of 16 packed B values.
// beta == 0 means C is not read. C is row-major with leading dimension ldc.
constexpr int kSgemmMR = 6;
constexpr int kSgemmNR = 16;
void sgemm_micro_6x16_avx2(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, float alpha,
                           float beta);
// The AVX-512 micro-kernel (gemm_avx512.cpp): the same contract for a 12x32 tile.
constexpr int kSgemmMR512 = 12;
constexpr int kSgemmNR512 = 32;
void sgemm_micro_12x32_avx512(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, float alpha,
                              float beta);
// AVX-512 packing in the micro-kernel's order (gemm.cpp's pack_a / pack_b_sliver are the
// plain versions): one whole 12-row sliver of an A stored [M, K], starting at the element
// (i0, p0), kc steps; one whole 32-column sliver of op(B) starting at B (the element
// op(B)(p0, j0) as stored), kc steps.
void sgemm_pack_a12_avx512(float* dst, const float* A, int64_t lda, int64_t kc);
// All mc rows (12-row slivers, the last zero-padded) of an A stored [K, M] (trans_a),
// starting at the element op(A)(i0, p0): Ap holds ceil(mc / 12) slivers of kc steps.
void sgemm_pack_a12_trans_avx512(float* Ap, const float* A, int64_t lda, int64_t mc, int64_t kc);
void sgemm_pack_b32_avx512(float* dst, const float* B, int64_t ldb, bool trans_b, int64_t kc);
}  // namespace detail

}  // namespace tz::kernels
