// The body of the fused attention's tile primitives (attention.h), written once over a
// vector type V and included by attention_avx2.cpp (V = 8 floats in a ymm) and
// attention_avx512.cpp (V = 16 floats in a zmm), each inside its own namespace and compiled
// for its ISA.
//
// Both primitives work on rows of D contiguous floats and need no packing:
//   attn_dots: S = scale * A B^T as a block of dot products, kDotRows rows of A x 4 rows of B
//              at a time (vector accumulators over D), each reduced once at the end;
//   attn_dots_t: the same S from B stored transposed (Bt [D, N]): kDotTRows rows of A x
//              kDotTVecs vectors of columns, a broadcast of A per row and d, no reductions;
//   attn_acc:  C += alpha * W B, 4 rows of C x kAccVecs vectors of columns at a time (per k,
//              one broadcast of W per row and kAccVecs loads of B). With 4 zmm of columns one
//              pass over the K rows of B covers a head of D <= 64, so decoding one token reads
//              each cached value row once.
// The block sizes fit the register file: 16 ymm hold 2 x 4 dot blocks, 32 zmm 4 x 4. The
// fixed-size loops are unrolled (#pragma GCC unroll): otherwise GCC keeps the accumulator
// arrays on the stack, a store per FMA. The D tail uses masked loads (masked lanes read 0)
// and stores. Summation order is fixed, so results are deterministic.
//
// V provides: kLanes, kDotRows, kDotTRows, kDotTVecs, kAccVecs, kAccOneRowVecs, type, mask (a lane mask), zero(), load(p),
// mask_n(n) (the first min(n, kLanes) lanes), load_m(p, m), store_m(p, v, m), set1(x),
// fma(a, b, c) = a * b + c, mul(a, b), hsum(v), hsum4(a0, a1, a2, a3) (the four sums in an __m128),
// and optionally, for one row of A: one_row_keys(N, D) (how many of N keys dots_one_row takes)
// and dots_one_row, equal bit for bit to dots_block<1, 4> over those keys.
// Included inside the ISA's namespace (avx2, avx512), after V: it defines that namespace's
// attn_dots and attn_acc (declared in attention.h) and keeps its helpers file-local.

namespace {

// R rows of A against NC rows of B (NC = 4, or 1 for the last keys), full D.
template <int R, int NC>
inline void dots_block(float* S, int64_t lds, const float* A, int64_t lda, const float* Bm,
                       int64_t ldb, int64_t D, typename V::mask tail, float scale) {
  using vec = typename V::type;
  vec acc[R][NC];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) acc[r][c] = V::zero();
  int64_t d = 0;
  for (; d + V::kLanes <= D; d += V::kLanes) {
    vec b[NC];
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) b[c] = V::load(Bm + c * ldb + d);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const vec a = V::load(A + r * lda + d);
#pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) acc[r][c] = V::fma(a, b[c], acc[r][c]);
    }
  }
  if (d < D) {
    vec b[NC];
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) b[c] = V::load_m(Bm + c * ldb + d, tail);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const vec a = V::load_m(A + r * lda + d, tail);
#pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) acc[r][c] = V::fma(a, b[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if constexpr (NC == 4) {
      _mm_storeu_ps(S + r * lds, _mm_mul_ps(V::hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), _mm_set1_ps(scale)));
    } else {
#pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) S[r * lds + c] = V::hsum(acc[r][c]) * scale;
    }
  }
}

template <int R>
inline void dots_rows(float* S, int64_t lds, const float* A, int64_t lda, const float* Bm,
                      int64_t ldb, int64_t N, int64_t D, typename V::mask tail, float scale) {
  int64_t n = 0;
  for (; n + 4 <= N; n += 4) dots_block<R, 4>(S + n, lds, A, lda, Bm + n * ldb, ldb, D, tail, scale);
  for (; n < N; ++n) dots_block<R, 1>(S + n, lds, A, lda, Bm + n * ldb, ldb, D, tail, scale);
}

// The last R (< kDotRows) rows: dots_rows<R> for R = rows.
template <int R>
inline void dots_last_rows(int64_t rows, float* S, int64_t lds, const float* A, int64_t lda,
                           const float* Bm, int64_t ldb, int64_t N, int64_t D,
                           typename V::mask tail, float scale) {
  if constexpr (R > 1) {
    if (rows < R) return dots_last_rows<R - 1>(rows, S, lds, A, lda, Bm, ldb, N, D, tail, scale);
  }
  dots_rows<R>(S, lds, A, lda, Bm, ldb, N, D, tail, scale);
}

// R rows of C, NV vectors of columns (the last one masked by `last`).
template <int R, int NV>
inline void acc_block(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t K,
                      const float* Bm, int64_t ldb, typename V::mask last, float alpha) {
  using vec = typename V::type;
  vec acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (int64_t k = 0; k < K; ++k) {
    const float* b = Bm + k * ldb;
    vec bv[NV];
#pragma GCC unroll 16
    for (int v = 0; v + 1 < NV; ++v) bv[v] = V::load(b + V::kLanes * v);
    bv[NV - 1] = V::load_m(b + V::kLanes * (NV - 1), last);
    // Loaded once for all R rows: left to itself GCC folds the loads into each row's FMAs,
    // R times the loads, and the loop then waits on the load ports instead of the FMAs. (One
    // row uses each load once: folded is right there, and keeps NV + 1 registers free.)
    if constexpr (R > 1) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) asm("" : "+v"(bv[v]));
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const vec w = V::set1(W[r * wm + k * wk]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(w, bv[v], acc[r][v]);
    }
  }
  const vec va = V::set1(alpha);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      float* c = C + r * ldc + V::kLanes * v;
      const typename V::mask m = v + 1 < NV ? V::mask_n(V::kLanes) : last;
      V::store_m(c, V::fma(va, acc[r][v], V::load_m(c, m)), m);
    }
}

// acc_block<R, nv> for nv <= NV vectors of columns.
template <int R, int NV>
inline void acc_cols(int64_t nv, float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk,
                     int64_t K, const float* Bm, int64_t ldb, typename V::mask last, float alpha) {
  if constexpr (NV > 1) {
    if (nv < NV) return acc_cols<R, NV - 1>(nv, C, ldc, W, wm, wk, K, Bm, ldb, last, alpha);
  }
  acc_block<R, NV>(C, ldc, W, wm, wk, K, Bm, ldb, last, alpha);
}

// R rows of C, NV vectors of columns at a time.
template <int R, int NV = V::kAccVecs>
inline void acc_rows(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t K,
                     const float* Bm, int64_t ldb, int64_t D, float alpha) {
  constexpr int64_t kCols = NV * V::kLanes;
  for (int64_t c = 0; c < D; c += kCols) {
    const int64_t w = std::min(kCols, D - c), nv = (w + V::kLanes - 1) / V::kLanes;
    acc_cols<R, NV>(nv, C + c, ldc, W, wm, wk, K, Bm + c, ldb, V::mask_n(w - V::kLanes * (nv - 1)), alpha);
  }
}

// The last R (< 4) rows: acc_rows<R> for R = rows.
template <int R>
inline void acc_last_rows(int64_t rows, float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk,
                          int64_t K, const float* Bm, int64_t ldb, int64_t D, float alpha) {
  if constexpr (R > 1) {
    if (rows < R) return acc_last_rows<R - 1>(rows, C, ldc, W, wm, wk, K, Bm, ldb, D, alpha);
  }
  acc_rows<R>(C, ldc, W, wm, wk, K, Bm, ldb, D, alpha);
}

// Against a transposed tile: R rows of A x NV vectors of columns of Bt [D, ldbt] (the last
// vector masked by `last`): per d, NV loads of Bt and one broadcast of A per row, no
// reductions (a GEMM micro-kernel's shape, on operands that need no packing).
template <int R, int NV>
inline void dots_t_block(float* S, int64_t lds, const float* A, int64_t lda, const float* Bt, int64_t ldbt, int64_t D,
                         typename V::mask last, float scale) {
  using vec = typename V::type;
  vec acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (int64_t d = 0; d < D; ++d, Bt += ldbt) {
    vec b[NV];
#pragma GCC unroll 4
    for (int v = 0; v + 1 < NV; ++v) b[v] = V::load(Bt + V::kLanes * v);
    b[NV - 1] = V::load_m(Bt + V::kLanes * (NV - 1), last);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const vec a = V::set1(A[r * lda + d]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(a, b[v], acc[r][v]);
    }
  }
  const vec vs = V::set1(scale);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      V::store_m(S + r * lds + V::kLanes * v, V::mul(acc[r][v], vs), v + 1 < NV ? V::mask_n(V::kLanes) : last);
}

// R rows against every column of Bt: kDotTVecs vectors at a time, then the last few.
template <int R, int NV = V::kDotTVecs>
inline void dots_t_cols(float* S, int64_t lds, const float* A, int64_t lda, const float* Bt, int64_t ldbt, int64_t N,
                        int64_t D, float scale) {
  constexpr int64_t kCols = NV * V::kLanes;
  int64_t c = 0;
  for (; c + kCols <= N; c += kCols)
    dots_t_block<R, NV>(S + c, lds, A, lda, Bt + c, ldbt, D, V::mask_n(V::kLanes), scale);
  if (c < N) {
    const int64_t w = N - c, nv = (w + V::kLanes - 1) / V::kLanes;
    const typename V::mask last = V::mask_n(w - V::kLanes * (nv - 1));
    if constexpr (NV > 1) {
      if (nv < NV) return dots_t_cols<R, NV - 1>(S + c, lds, A, lda, Bt + c, ldbt, w, D, scale);
    }
    dots_t_block<R, NV>(S + c, lds, A, lda, Bt + c, ldbt, D, last, scale);
  }
}

// The last R (< kDotTRows) rows: dots_t_cols<R> for R = rows.
template <int R>
inline void dots_t_last_rows(int64_t rows, float* S, int64_t lds, const float* A, int64_t lda, const float* Bt,
                             int64_t ldbt, int64_t N, int64_t D, float scale) {
  if constexpr (R > 1) {
    if (rows < R) return dots_t_last_rows<R - 1>(rows, S, lds, A, lda, Bt, ldbt, N, D, scale);
  }
  dots_t_cols<R>(S, lds, A, lda, Bt, ldbt, N, D, scale);
}

// One row of A (decoding): W's wider key blocks first, where W (V) has them.
template <class W = V>
inline void dots_one_row_rows(float* S, int64_t lds, const float* A, int64_t lda, const float* Bm, int64_t ldb,
                              int64_t N, int64_t D, typename W::mask tail, float scale) {
  int64_t n = 0;
  if constexpr (requires { W::one_row_keys(N, D); }) {
    n = W::one_row_keys(N, D);
    W::dots_one_row(S, A, Bm, ldb, n, D, tail, scale);
  }
  dots_rows<1>(S + n, lds, A, lda, Bm + n * ldb, ldb, N - n, D, tail, scale);
}

}  // namespace

void attn_dots(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bm,
               int64_t ldb, int64_t N, int64_t D, float scale) {
  constexpr int kR = V::kDotRows;
  const typename V::mask tail = V::mask_n(D % V::kLanes);
  if (M == 1) return dots_one_row_rows(S, lds, A, lda, Bm, ldb, N, D, tail, scale);
  int64_t m = 0;
  for (; m + kR <= M; m += kR) dots_rows<kR>(S + m * lds, lds, A + m * lda, lda, Bm, ldb, N, D, tail, scale);
  if (m < M) dots_last_rows<kR - 1>(M - m, S + m * lds, lds, A + m * lda, lda, Bm, ldb, N, D, tail, scale);
}

void attn_dots_t(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bt, int64_t ldbt,
                 int64_t N, int64_t D, float scale) {
  constexpr int kR = V::kDotTRows;
  int64_t m = 0;
  for (; m + kR <= M; m += kR) dots_t_cols<kR>(S + m * lds, lds, A + m * lda, lda, Bt, ldbt, N, D, scale);
  if (m < M) dots_t_last_rows<kR - 1>(M - m, S + m * lds, lds, A + m * lda, lda, Bt, ldbt, N, D, scale);
}

void attn_acc(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t M, int64_t K,
              const float* Bm, int64_t ldb, int64_t D, float alpha) {
  // One row (decoding): kAccOneRowVecs vectors of columns, so one pass over the K cached
  // value rows covers a head of D <= 64 (with 4 rows' columns, AVX2 would read each row 4 times).
  if (M == 1) return acc_rows<1, V::kAccOneRowVecs>(C, ldc, W, wm, wk, K, Bm, ldb, D, alpha);
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) acc_rows<4>(C + m * ldc, ldc, W + m * wm, wm, wk, K, Bm, ldb, D, alpha);
  if (m < M) acc_last_rows<3>(M - m, C + m * ldc, ldc, W + m * wm, wm, wk, K, Bm, ldb, D, alpha);
}
