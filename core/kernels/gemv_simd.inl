// The body of the SIMD GEMV kernels, written once over a vector type V and included by
// gemv_avx2.cpp (V = 8 floats in a ymm) and gemv_avx512.cpp (V = 16 floats in a zmm),
// each inside its own namespace and compiled for its ISA. Shape letters as in gemm.h.
//
// What it computes (see gemv.h): C[i, j0:j1] = alpha * A[i, :] op(B)[:, j0:j1] (+ beta C)
// for the M <= 4 rows of A (decoding one token is M = 1), A stored row-major [M, K].
// Every value of B is loaded once per call, which is what a memory-bound product needs:
//   trans_b (B stored [N, K], linear's x W^T): one row of B at a time, dotted with the M
//     rows of A in a few vector accumulators over K (lanes of V), the K tail by a masked
//     load (masked lanes read 0), the accumulators summed across lanes once at the end;
//   !trans_b (B stored [K, N]): B row by row in storage order, each row's values FMA'd into
//     the M rows of C (which stay in L1), like gemm_direct's plain loop but with vector FMAs.
// Summation order is fixed by K, M and the lane count, never by the column split across
// threads, so results are deterministic for any thread count.
//
// V provides: kLanes, type, zero(), load(p), load_n(p, n) (n < kLanes lanes read, the
// rest 0), set1(x), add(a, b), fma(a, b, c) = a * b + c, hsum(v) (a fixed pairwise order),
// store(p, v), store_n(p, v, n) (only n lanes written).

// trans_b: C[i, j] for the M rows of A and each row j of B in [j0, j1), one row of B at a
// time, so B streams in storage order (the rows are contiguous). Measured (one core, x W^T,
// K 512..2048, from DRAM / from L3): 30-38 / 80-110 GB/s, against 20-21 / 70-75 for
// interleaving 8 rows of B with a software prefetch of the next 8, and below either for 2 or
// 4 interleaved rows: one sequential stream is what the hardware prefetcher follows best.
// U accumulators per row of A (U * M independent FMA chains), summed pairwise at the end.
// The rows of B are also prefetched kAhead floats (8 KiB) ahead, one cache line at a time
// (past the end of a row that is the next rows: B is one block). On Zen 5, one core: with the
// weights in L3 (the small GPT's 16 matrices) the GEMV went from 91 to 111 GB/s with 4 KiB
// ahead; in decoding, 8 KiB beat 4 by 2-5 % for both GPTs (the large one's weights stream
// from DRAM) and 16 KiB lost. A prefetch past the end of B is harmless: it never faults.
constexpr int64_t kAhead = 2048;

template <int M>
void gemv_dots(const kernels::GemmArgs<float>& g, int64_t j0, int64_t j1) {
  using vec = typename V::type;
  constexpr int U = M == 1 ? 4 : 2;
  constexpr int64_t step = U * V::kLanes;
  constexpr int kLinePerVecs = 16 / V::kLanes;  // vectors per 64-byte line
  const int64_t K = g.K;
  for (int64_t j = j0; j < j1; ++j) {
    const float* b = g.B + j * g.ldb;
    vec acc[M][U];
#pragma GCC unroll 32
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) acc[i][u] = V::zero();
    int64_t p = 0;
    for (; p + step <= K; p += step) {
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) {
        if (u % kLinePerVecs == 0) _mm_prefetch(reinterpret_cast<const char*>(b + p + u * V::kLanes + kAhead), _MM_HINT_T0);
        const vec bv = V::load(b + p + u * V::kLanes);
#pragma GCC unroll 32
        for (int i = 0; i < M; ++i) acc[i][u] = V::fma(V::load(g.A + i * g.lda + p + u * V::kLanes), bv, acc[i][u]);
      }
    }
    for (; p + V::kLanes <= K; p += V::kLanes) {  // whole vectors left over: chain 0
      const vec bv = V::load(b + p);
#pragma GCC unroll 32
      for (int i = 0; i < M; ++i) acc[i][0] = V::fma(V::load(g.A + i * g.lda + p), bv, acc[i][0]);
    }
    if (p < K) {  // K tail: masked loads, the lanes past K are 0 on both sides
      const int n = int(K - p);
      const vec bv = V::load_n(b + p, n);
#pragma GCC unroll 32
      for (int i = 0; i < M; ++i) acc[i][1 % U] = V::fma(V::load_n(g.A + i * g.lda + p, n), bv, acc[i][1 % U]);
    }
#pragma GCC unroll 32
    for (int i = 0; i < M; ++i) {
      vec t;
      if constexpr (U == 4) t = V::add(V::add(acc[i][0], acc[i][1]), V::add(acc[i][2], acc[i][3]));
      else t = V::add(acc[i][0], acc[i][1]);
      const float s = V::hsum(t);
      float& c = g.C[i * g.ldc + j];
      c = g.beta == 0.0f ? g.alpha * s : g.alpha * s + g.beta * c;  // beta == 0: C not read
    }
  }
}

// !trans_b: C[i, j0:j1] = beta C + sum over p of (alpha A[i, p]) B[p, j0:j1], one
// contiguous row of B at a time (so B streams in storage order) into the rows of C, which
// stay in L1 for the column ranges of these products. Each C element is one in-order FMA
// chain over p.
template <int M>
void gemv_axpys(const kernels::GemmArgs<float>& g, int64_t j0, int64_t j1) {
  using vec = typename V::type;
  const int64_t n = j1 - j0, nv = n / V::kLanes * V::kLanes;
  const int tail = int(n - nv);
  for (int i = 0; i < M; ++i) {  // C = beta C (beta == 0: overwrite, never read)
    float* c = g.C + i * g.ldc + j0;
    for (int64_t j = 0; j < n; ++j) c[j] = g.beta == 0.0f ? 0.0f : g.beta * c[j];
  }
  for (int64_t p = 0; p < g.K; ++p) {
    const float* b = g.B + p * g.ldb + j0;
    vec a[M];
#pragma GCC unroll 32
    for (int i = 0; i < M; ++i) a[i] = V::set1(g.alpha * g.A[i * g.lda + p]);
    for (int64_t j = 0; j < nv; j += V::kLanes) {
      const vec bv = V::load(b + j);
#pragma GCC unroll 32
      for (int i = 0; i < M; ++i) {
        float* c = g.C + i * g.ldc + j0 + j;
        V::store(c, V::fma(a[i], bv, V::load(c)));
      }
    }
    if (tail) {
      const vec bv = V::load_n(b + nv, tail);
#pragma GCC unroll 32
      for (int i = 0; i < M; ++i) {
        float* c = g.C + i * g.ldc + j0 + nv;
        V::store_n(c, V::fma(a[i], bv, V::load_n(c, tail)), tail);
      }
    }
  }
}

template <int M>
void gemv_m(const kernels::GemmArgs<float>& g, int64_t j0, int64_t j1) {
  if (g.trans_b) gemv_dots<M>(g, j0, j1);
  else gemv_axpys<M>(g, j0, j1);
}

void gemv_impl(const kernels::GemmArgs<float>& g, int64_t j0, int64_t j1) {
  switch (g.M) {
    case 1: return gemv_m<1>(g, j0, j1);
    case 2: return gemv_m<2>(g, j0, j1);
    case 3: return gemv_m<3>(g, j0, j1);
    case 4: return gemv_m<4>(g, j0, j1);
    default: break;
  }
}
