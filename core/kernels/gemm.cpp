// GEMM kernels: the naive reference, our own packed GEMM, OpenBLAS, and the dispatcher.
// Shape letters: M (rows of C), N (columns of C), K (the summed dim); see gemm.h.
//
// Our GEMM follows the GotoBLAS/BLIS loop structure (Goto & van de Geijn 2008; Van Zee &
// van de Geijn, "BLIS", 2015). Five loops around a micro-kernel:
//
//   for jc in N step NC:                 B panel  op(B)[pc:pc+KC, jc:jc+NC] -> packed, ~L3
//     for pc in K step KC:
//       pack B panel into NR-column slivers
//       for ic in M step MC:             A block  op(A)[ic:ic+MC, pc:pc+KC] -> packed, ~L2
//         pack A block into MR-row slivers
//         for jr in NC step NR:          one B sliver (KC x NR) stays in L1
//           for ir in MC step MR:        one A sliver (MR x KC) streams from L2
//             micro-kernel: C[MR, NR] (+)= A sliver * B sliver   (all in registers)
//
// Packing copies each operand once into the exact order the micro-kernel reads it
// (contiguous, 64-byte aligned, zero-padded to whole slivers), which removes the strides
// and the transpose flags from the inner loop and makes edge tiles the same code.
//
// Block sizes for f32 with the 12x32 AVX-512 kernel (gemm_avx512.cpp), measured with the
// GPT training shapes (M = 2048, K and N in 256..2048, all three transpose cases) in CPU
// time on the busy Zen 5 dev machine: KC = 256 (a B sliver is 32 KiB of the 48 KiB L1d),
// MC = 168 (168 KiB A block in L2), NC = 4096. KC = 128 and MR = 8 or 14 were within the
// noise (+-10 %) of this choice; all reach 130-185 GFLOP/s on one core against 87-106 for
// the AVX2 kernel.
// Block sizes for f32 with the 6x16 AVX2 kernel (chosen for a Zen-class core: 32K+ L1d,
// 1M L2 per core, shared L3; confirmed by bench/bench_gemm.cpp on the Zen 5 dev machine):
//   KC = 256: a B sliver is KC*NR*4 = 16 KiB, half of a 32 KiB L1d, leaving room for the
//             A sliver (KC*MR*4 = 6 KiB) streaming through.
//   MC = 144: the packed A block is MC*KC*4 = 144 KiB, well inside a 1 MiB L2 together
//             with the B panel slivers passing through it.
//   NC = 4080: the packed B panel is KC*NC*4 ~ 4 MiB, sized for the shared L3; a multiple
//             of NR.
// Threads: the ic/ir work (MR-row slivers of M) is split into contiguous static ranges,
// one per thread, each thread packing its own A blocks; the B panel is packed once (also
// split across threads) and shared. Skinny products (M below 4 slivers per thread) split
// the jr loop (B slivers) instead, so decoding-sized GEMMs still use every thread. Every C element is computed by the
// same in-order FMA chain whatever the split, so results do not even depend on the thread count.
#include "core/kernels/gemm.h"
#include "core/kernels/gemv.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/parallel.h"

#ifdef TZ_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace tz::kernels {

// ---- checks --------------------------------------------------------------------------------

template <class T>
void gemm_check(const GemmArgs<T>& g, const char* op) {
  TZ_CHECK(g.M >= 0 && g.N >= 0 && g.K >= 0, op, ": negative size M=", g.M, " N=", g.N, " K=", g.K);
  const int64_t a_cols = g.trans_a ? g.M : g.K, b_cols = g.trans_b ? g.K : g.N;
  TZ_CHECK(g.lda >= std::max<int64_t>(1, a_cols), op, ": lda=", g.lda, " too small for A of ",
           g.trans_a ? "[K, M]" : "[M, K]", " with M=", g.M, " K=", g.K);
  TZ_CHECK(g.ldb >= std::max<int64_t>(1, b_cols), op, ": ldb=", g.ldb, " too small for B of ",
           g.trans_b ? "[N, K]" : "[K, N]", " with K=", g.K, " N=", g.N);
  TZ_CHECK(g.ldc >= std::max<int64_t>(1, g.N), op, ": ldc=", g.ldc, " too small for C of [M, N]", " with N=", g.N);
}
template void gemm_check(const GemmArgs<float>&, const char*);
template void gemm_check(const GemmArgs<double>&, const char*);

namespace {

// op(A)(i, p) and op(B)(p, j) as stored.
template <class T>
inline T a_at(const GemmArgs<T>& g, int64_t i, int64_t p) {
  return g.trans_a ? g.A[p * g.lda + i] : g.A[i * g.lda + p];
}
template <class T>
inline T b_at(const GemmArgs<T>& g, int64_t p, int64_t j) {
  return g.trans_b ? g.B[j * g.ldb + p] : g.B[p * g.ldb + j];
}

// C = beta * C for the degenerate products (K == 0 or alpha == 0); beta == 0 writes zeros.
template <class T>
void scale_c(const GemmArgs<T>& g) {
  for (int64_t i = 0; i < g.M; ++i) {
    T* c = g.C + i * g.ldc;
    for (int64_t j = 0; j < g.N; ++j) c[j] = g.beta == T(0) ? T(0) : g.beta * c[j];
  }
}

// C[rows, cols] = beta * C + bias (beta == 0: C not read): what the product is added to.
template <class T>
void add_bias_rows(T* C, int64_t ldc, int64_t rows, int64_t cols, const T* bias, T beta) {
  for (int64_t i = 0; i < rows; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::copy(bias, bias + cols, c);
    else
      for (int64_t j = 0; j < cols; ++j) c[j] = beta * c[j] + bias[j];
  }
}

// add_bias_rows on one tile of C. Whole tiles have a fixed width, so the copy is a few
// vector moves (a call per row, or scalar moves where C might overlap the bias, would cost
// several percent of the tile's product).
template <class T, int NR>
void add_bias_tile(T* C, int64_t ldc, int64_t rows, int64_t cols, const T* bias, T beta) {
  if (cols != NR) return add_bias_rows(C, ldc, rows, cols, bias, beta);
  for (int64_t i = 0; i < rows; ++i) {
    T* __restrict c = C + i * ldc;
    if (beta == T(0)) {
      std::memcpy(c, bias, NR * sizeof(T));
    } else {
      const T* __restrict b = bias;
      for (int j = 0; j < NR; ++j) c[j] = beta * c[j] + b[j];
    }
  }
}

// The paths without packed tiles (the reference, the direct and BLAS paths, the degenerate
// products) take the bias as a pass over C first: C = beta C + bias, then the product with beta = 1.
template <class T>
GemmArgs<T> bias_first(const GemmArgs<T>& g) {
  if (!g.bias) return g;
  add_bias_rows(g.C, g.ldc, g.M, g.N, g.bias, g.beta);
  GemmArgs<T> rest = g;
  rest.beta = T(1);
  rest.bias = nullptr;
  return rest;
}

// ---- the reference -------------------------------------------------------------------------

template <class T>
void gemm_ref_impl(const GemmArgs<T>& g_in) {
  gemm_check(g_in, "gemm_ref");
  const GemmArgs<T> g = bias_first(g_in);
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      T s = 0;
      for (int64_t p = 0; p < g.K; ++p) s += a_at(g, i, p) * b_at(g, p, j);
      T& c = g.C[i * g.ldc + j];
      c = g.beta == T(0) ? g.alpha * s : g.alpha * s + g.beta * c;  // beta == 0: C not read
    }
}

// ---- packing buffers -----------------------------------------------------------------------

// A growable 64-byte-aligned scratch buffer, one per thread and purpose, reused across
// calls so small GEMMs do not pay for an allocation each.
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~Scratch() { std::free(ptr); }
  template <class T>
  T* get(size_t n) {
    size_t need = (n * sizeof(T) + 63) / 64 * 64;
    if (need > bytes) {
      std::free(ptr);
      ptr = std::aligned_alloc(64, need);
      TZ_CHECK(ptr != nullptr, "gemm: out of memory for a packing buffer of ", need, " bytes");
      bytes = need;
    }
    return static_cast<T*>(ptr);
  }
};
Scratch& a_scratch() {
  thread_local Scratch s;
  return s;
}
Scratch& b_scratch() {
  thread_local Scratch s;
  return s;
}

// Packs rows [i0, i0 + mc) and columns [p0, p0 + kc) of op(A) into MR-row slivers:
// sliver s holds, for each p, the MR values op(A)(i0 + s*MR + r, p0 + p), r = 0..MR-1.
// Rows past mc are zero (so edge tiles need no special case inside the micro-kernel).
// The 12x32 AVX-512 path packs whole slivers with SIMD transposes (gemm_avx512.cpp); edge
// slivers and every other path use the plain loops below.
template <class T, int MR>
void pack_a(T* Ap, const GemmArgs<T>& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
  if constexpr (std::is_same_v<T, float> && MR == detail::kSgemmMR512) {
    if (g.trans_a) return detail::sgemm_pack_a12_trans_avx512(Ap, g.A + p0 * g.lda + i0, g.lda, mc, kc);
  }
  for (int64_t s = 0; s * MR < mc; ++s) {
    T* dst = Ap + s * MR * kc;
    const int64_t rows = std::min<int64_t>(MR, mc - s * MR);
    const int64_t ib = i0 + s * MR;
    if constexpr (std::is_same_v<T, float> && MR == detail::kSgemmMR512) {
      if (rows == MR) {  // (trans_a was handled above)
        detail::sgemm_pack_a12_avx512(dst, g.A + ib * g.lda + p0, g.lda, kc);
        continue;
      }
    }
    if (g.trans_a) {
      // A stored [K, M]: the MR values of step p are contiguous.
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = g.A + (p0 + p) * g.lda + ib;
        for (int64_t r = 0; r < rows; ++r) dst[p * MR + r] = src[r];
        for (int64_t r = rows; r < MR; ++r) dst[p * MR + r] = T(0);
      }
    } else {
      // A stored [M, K]: read each row contiguously, write it with stride MR.
      for (int64_t r = 0; r < rows; ++r) {
        const T* src = g.A + (ib + r) * g.lda + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + r] = src[p];
      }
      for (int64_t r = rows; r < MR; ++r)
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + r] = T(0);
    }
  }
}

// Packs one NR-column sliver of op(B): columns [j0, j0 + NR) (zero past N), rows
// [p0, p0 + kc), as kc rows of NR contiguous values.
template <class T, int NR>
void pack_b_sliver(T* dst, const GemmArgs<T>& g, int64_t j0, int64_t nr, int64_t p0, int64_t kc) {
  if constexpr (std::is_same_v<T, float> && NR == detail::kSgemmNR512) {
    if (nr == NR) {
      const float* src = g.trans_b ? g.B + j0 * g.ldb + p0 : g.B + p0 * g.ldb + j0;
      return detail::sgemm_pack_b32_avx512(dst, src, g.ldb, g.trans_b, kc);
    }
  }
  if (!g.trans_b) {
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = g.B + (p0 + p) * g.ldb + j0;
      for (int64_t c = 0; c < nr; ++c) dst[p * NR + c] = src[c];
      for (int64_t c = nr; c < NR; ++c) dst[p * NR + c] = T(0);
    }
  } else {
    // B stored [N, K]: read each of the nr rows contiguously.
    for (int64_t c = 0; c < nr; ++c) {
      const T* src = g.B + (j0 + c) * g.ldb + p0;
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + c] = src[p];
    }
    for (int64_t c = nr; c < NR; ++c)
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + c] = T(0);
  }
}

// ---- the portable micro-kernel ---------------------------------------------------------------

// C[MR, NR] = alpha * (packed A sliver)^T (packed B sliver) + beta * C, beta == 0: C not read.
// Plain loops over a local accumulator tile; the compiler may vectorise the j loop.
template <class T, int MR, int NR>
void micro_scalar(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const T* a = Ap + p * MR;
    const T* b = Bp + p * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      T& c = C[i * ldc + j];
      c = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c;
    }
}

template <class T>
using MicroFn = void (*)(int64_t, const T*, const T*, T*, int64_t, T, T);

struct Blocking {
  int64_t MC, KC, NC;
};

// Runs fn(0, n) serially for small products (an OpenMP region costs microseconds), else
// through tz::parallel_for.
void maybe_parallel(int64_t n, int64_t cost_per_item, const std::function<void(int64_t, int64_t)>& fn) {
  constexpr int64_t kMinParallelFlops = int64_t(1) << 18;
  if (n * cost_per_item < kMinParallelFlops) {
    if (n > 0) fn(0, n);
  } else {
    parallel_for(n, cost_per_item, fn);
  }
}

// The five loops (see the top of the file).
template <class T, int MR, int NR>
void gemm_packed(const GemmArgs<T>& g, Blocking bl, MicroFn<T> micro) {
  const int64_t M = g.M, N = g.N, K = g.K;
  // Whole slivers per block: the packing buffers hold MC/MR A slivers and NC/NR B slivers.
  const int64_t MC = std::max<int64_t>(bl.MC / MR * MR, MR);
  const int64_t NC = std::max<int64_t>(bl.NC / NR * NR, NR);
  const int64_t KC = std::max<int64_t>(bl.KC, 1);
  const int64_t nc_max = std::min(NC, (N + NR - 1) / NR * NR);
  const int64_t kc_max = std::min(KC, K);
  T* Bp = b_scratch().get<T>(size_t(nc_max * kc_max));
  const int64_t a_slivers = (M + MR - 1) / MR;

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t b_slivers = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      // Later K blocks accumulate into C; with a bias, the first block's tiles get
      // beta C + bias written (while they are about to be in L1 anyway) and accumulate too.
      const bool tile_bias = pc == 0 && g.bias;
      const T beta = pc == 0 && !g.bias ? g.beta : T(1);

      // Pack the B panel op(B)[pc:pc+kc, jc:jc+nc], sliver by sliver (shared by all threads).
      // parallel_for's own grain: a 256 x 256 panel is worth splitting; below the GEMM
      // threshold of maybe_parallel it ran on one thread while the others waited.
      parallel_for(b_slivers, kc * NR, [&](int64_t s0, int64_t s1) {
        for (int64_t s = s0; s < s1; ++s)
          pack_b_sliver<T, NR>(Bp + s * NR * kc, g, jc + s * NR, std::min<int64_t>(NR, nc - s * NR), pc, kc);
      });

      // Threads take contiguous ranges of MR-row slivers of M (each packing its own A
      // blocks); when M has too few slivers to share (skinny products, e.g. decoding one
      // token), they take ranges of NR-column slivers of the B panel instead.
      auto compute = [&](int64_t s_begin, int64_t s_end, int64_t b_begin, int64_t b_end) {
        T* Ap = a_scratch().get<T>(size_t(MC * kc));
        alignas(64) T tile[MR * NR];
        for (int64_t sb = s_begin; sb < s_end; sb += MC / MR) {
          const int64_t ic = sb * MR;
          const int64_t mc = std::min(std::min(s_end * MR, M), ic + MC) - ic;
          pack_a<T, MR>(Ap, g, ic, mc, pc, kc);
          for (int64_t jr = b_begin * NR; jr < std::min(b_end * NR, nc); jr += NR) {
            const int64_t nr = std::min<int64_t>(NR, nc - jr);
            const T* bs = Bp + (jr / NR) * NR * kc;
            for (int64_t ir = 0; ir < mc; ir += MR) {
              const int64_t mr = std::min<int64_t>(MR, mc - ir);
              const T* as = Ap + (ir / MR) * MR * kc;
              T* c = g.C + (ic + ir) * g.ldc + jc + jr;
              if (tile_bias) add_bias_tile<T, NR>(c, g.ldc, mr, nr, g.bias + jc + jr, g.beta);
              if (mr == MR && nr == NR) {
                micro(kc, as, bs, c, g.ldc, g.alpha, beta);
              } else {
                // Edge tile: compute the whole padded tile into a local buffer, then merge
                // the valid mr x nr corner into C.
                micro(kc, as, bs, tile, NR, g.alpha, T(0));
                for (int64_t i = 0; i < mr; ++i)
                  for (int64_t j = 0; j < nr; ++j) {
                    T& cij = c[i * g.ldc + j];
                    cij = beta == T(0) ? tile[i * NR + j] : tile[i * NR + j] + beta * cij;
                  }
              }
            }
          }
        }
      };
      if (a_slivers >= 4 * get_num_threads() || b_slivers < 2) {
        maybe_parallel(a_slivers, 2 * MR * nc * kc, [&](int64_t s0, int64_t s1) { compute(s0, s1, 0, b_slivers); });
      } else {
        maybe_parallel(b_slivers, 2 * NR * M * kc, [&](int64_t b0, int64_t b1) { compute(0, a_slivers, b0, b1); });
      }
    }
  }
}

// Skinny products (M <= kDirectMaxM rows: decoding one token is a GEMV) skip packing,
// which would copy all of B to use each value only M times. Columns are split across
// threads; C row i, column j:
//   B stored [N, K] (trans_b, the x W^T of linear): a dot product of two contiguous rows,
//     summed in 8 interleaved partial sums (a fixed order, so still deterministic, and
//     one the compiler can vectorise without -ffast-math);
//   B stored [K, N]: row i of C accumulates A(i, p) * B[p, :] over p (contiguous axpys).
constexpr int64_t kDirectMaxM = 4;

// Columns [j0, j1) of C by the plain loops above (each column summed in a fixed order, so
// the split of columns never changes a result).
template <class T>
void direct_columns(const GemmArgs<T>& g, int64_t j0, int64_t j1) {
  const int64_t M = g.M, K = g.K;
  for (int64_t i = 0; i < M; ++i) {
    T* c = g.C + i * g.ldc;
    if (g.trans_b) {
      for (int64_t j = j0; j < j1; ++j) {
        const T* b = g.B + j * g.ldb;
        T part[8] = {};
        int64_t p = 0;
        if (!g.trans_a) {
          const T* a = g.A + i * g.lda;
          for (; p + 8 <= K; p += 8)
            for (int l = 0; l < 8; ++l) part[l] += a[p + l] * b[p + l];
        }
        for (; p < K; ++p) part[p % 8] += a_at(g, i, p) * b[p];
        T s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        c[j] = g.beta == T(0) ? g.alpha * s : g.alpha * s + g.beta * c[j];
      }
    } else {
      // Scale the row first (beta == 0: overwrite), then add alpha * A(i, p) * B[p, :].
      for (int64_t j = j0; j < j1; ++j) c[j] = g.beta == T(0) ? T(0) : g.beta * c[j];
      for (int64_t p = 0; p < K; ++p) {
        const T a = g.alpha * a_at(g, i, p);
        const T* b = g.B + p * g.ldb;
        for (int64_t j = j0; j < j1; ++j) c[j] += a * b[j];
      }
    }
  }
}

template <class T>
void gemm_direct(const GemmArgs<T>& g) {
  const int64_t M = g.M, N = g.N, K = g.K;
  if constexpr (std::is_same_v<T, float>) {
    static_assert(kGemvMaxM >= kDirectMaxM);
    if (!g.trans_a && simd_level() != SimdLevel::off) {
      // Threads only for a B of 4 parallel grains (512 KiB; 8 MiB when sized for passive
      // waiting). Measured, small GPT decoding on 2 threads (weights in L3): a 2 MiB
      // threshold 3100 tok/s, 512 KiB 4000-4900, 256 KiB and 128 KiB no better; with
      // OMP_WAIT_POLICY=PASSIVE the 512 KiB threshold gave 600-1850, 8 MiB 3350-4130.
      const int64_t kGemvParallelMinB = 4 * parallel_grain();  // elements of B
      if (N * K < kGemvParallelMinB)
        sgemv_columns(g, 0, N);
      else
        parallel_for(N, 2 * M * K, [&](int64_t j0, int64_t j1) { sgemv_columns(g, j0, j1); });
      return;
    }
  }
  maybe_parallel(N, 2 * M * K, [&](int64_t j0, int64_t j1) { direct_columns(g, j0, j1); });
}

}  // namespace

// The SIMD GEMV kernels (gemv.h) for f32 with A stored row-major: they stream B once with
// vector FMAs; the plain loop is their portable fallback.
void sgemv_columns(const GemmArgs<float>& g, int64_t j0, int64_t j1) {
  const SimdLevel level = simd_level();
  if (!g.trans_a && level == SimdLevel::avx512)
    sgemv_avx512(g, j0, j1);
  else if (!g.trans_a && level != SimdLevel::off)
    sgemv_avx2(g, j0, j1);
  else
    direct_columns(g, j0, j1);
}

namespace {

template <class T>
bool trivial(const GemmArgs<T>& g_in) {
  if (g_in.M == 0 || g_in.N == 0) return true;
  if (g_in.K == 0 || g_in.alpha == T(0)) {
    scale_c(bias_first(g_in));
    return true;
  }
  return false;
}

}  // namespace

// ---- public entry points -----------------------------------------------------------------------

void gemm_ref(const GemmArgs<float>& g) { gemm_ref_impl(g); }
void gemm_ref(const GemmArgs<double>& g) { gemm_ref_impl(g); }

void gemm_own(const GemmArgs<float>& g_in) {
  gemm_check(g_in, "gemm");
  const GemmArgs<float> g = g_in.M <= kDirectMaxM ? bias_first(g_in) : g_in;
  if (trivial(g)) return;
  if (g.M <= kDirectMaxM) {
    gemm_direct(g);
  } else if (simd_level() == SimdLevel::avx512) {
    gemm_packed<float, detail::kSgemmMR512, detail::kSgemmNR512>(g, {168, 256, 4096},
                                                                 &detail::sgemm_micro_12x32_avx512);
  } else if (simd_enabled()) {
    gemm_packed<float, detail::kSgemmMR, detail::kSgemmNR>(g, {144, 256, 4080}, &detail::sgemm_micro_6x16_avx2);
  } else {
    gemm_packed<float, 4, 8>(g, {128, 256, 4096}, &micro_scalar<float, 4, 8>);
  }
}

void gemm_own(const GemmArgs<double>& g_in) {
  gemm_check(g_in, "gemm");
  const GemmArgs<double> g = g_in.M <= kDirectMaxM ? bias_first(g_in) : g_in;
  if (trivial(g)) return;
  if (g.M <= kDirectMaxM) return gemm_direct(g);
  // f64 exists for gradcheck and proofs: the same blocked structure with the portable
  // micro-kernel (KC = 128 keeps a 4x8 B sliver of doubles at 8 KiB in L1).
  gemm_packed<double, 4, 8>(g, {128, 128, 2048}, &micro_scalar<double, 4, 8>);
}

bool gemm_blas_available() {
#ifdef TZ_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

#ifdef TZ_HAVE_OPENBLAS
namespace {
CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }
}  // namespace
void gemm_blas(const GemmArgs<float>& g_in) {
  gemm_check(g_in, "gemm_blas");
  if (trivial(g_in)) return;
  const GemmArgs<float> g = bias_first(g_in);
  cblas_sgemm(CblasRowMajor, tr(g.trans_a), tr(g.trans_b), int(g.M), int(g.N), int(g.K), g.alpha, g.A, int(g.lda), g.B,
              int(g.ldb), g.beta, g.C, int(g.ldc));
}
void gemm_blas(const GemmArgs<double>& g_in) {
  gemm_check(g_in, "gemm_blas");
  if (trivial(g_in)) return;
  const GemmArgs<double> g = bias_first(g_in);
  cblas_dgemm(CblasRowMajor, tr(g.trans_a), tr(g.trans_b), int(g.M), int(g.N), int(g.K), g.alpha, g.A, int(g.lda), g.B,
              int(g.ldb), g.beta, g.C, int(g.ldc));
}
#else
void gemm_blas(const GemmArgs<float>&) {
  throw Error("gemm_blas: tensorzoo was built without OpenBLAS (TZ_USE_OPENBLAS=OFF or not found)");
}
void gemm_blas(const GemmArgs<double>&) {
  throw Error("gemm_blas: tensorzoo was built without OpenBLAS (TZ_USE_OPENBLAS=OFF or not found)");
}
#endif

// The dispatcher. Rule measured with bench/bench_gemm.cpp (and the transposed training
// shapes) on the 2-core Zen 5 dev machine, f32, OpenBLAS 0.3.21 (OpenMP build):
//   - square 256..2048 and M = 2048 GPT shapes (K, N in 256..1024; NN, NT, TN): ours at
//     0.88-1.10 of OpenBLAS on 1 and 2 threads (~100-112 GFLOP/s per core) - a tie;
//   - M <= 4 (GEMV-like decoding): our unpacked direct path is 1.2-1.3x OpenBLAS;
//   - 4 < M < 48 (skinny, e.g. 16 x 768 x 768): OpenBLAS is 1.7-2.5x faster;
//   - tiny (32^3, 64^3): OpenBLAS ~15% faster on 1 thread, but batched small GEMMs run
//     inside our own parallel loops, where OpenBLAS must not be called anyway.
// With the AVX-512 12x32 kernel (re-measured in CPU time, 1 thread, x W^T with N, K in
// 256..1024): ours is 1.0-1.5x OpenBLAS from M = 24 up (130-185 GFLOP/s on the GPT shapes
// against OpenBLAS's 75-100: this OpenBLAS 0.3.21 runs its Haswell AVX2 kernel on Zen 5),
// 0.7-0.85x for 4 < M < 24.
// So f32 uses our GEMM (deterministic for any thread count, no second thread pool) except
// for skinny products (4 < M < 48 with AVX2, 4 < M < 24 with AVX-512), which go to
// OpenBLAS when it is there and runs AVX2-or-wider kernels. OpenBLAS picks its kernels by
// CPU model, and a model newer than the library gets old ones: 0.3.21 reads an Intel Xeon
// of family 6 model 207 as "Prescott" and runs SSE3 kernels, which ours beat on every
// skinny shape there (bench_gemm --skinny: 1.2-4.5x on 1 thread, 1.4-4.0x on 2).
namespace {
std::atomic<bool> g_blas_enabled{true};

#ifdef TZ_HAVE_OPENBLAS
bool blas_has_wide_kernels() {
  static const bool wide = [] {
    const char* name = openblas_get_corename();
    const std::string core = name ? name : "";
    for (const char* known : {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"})
      if (core.size() == std::strlen(known) &&
          std::equal(core.begin(), core.end(), known, [](char a, char b) { return std::tolower(a) == b; }))
        return true;
    return false;
  }();
  return wide;
}
#endif

template <class T>
bool use_blas(const GemmArgs<T>& g) {
#ifdef TZ_HAVE_OPENBLAS
  if (!g_blas_enabled.load(std::memory_order_relaxed) || in_parallel_region())
    return false;  // never a threaded BLAS inside our own threads
  // f64 is the proof path: OpenBLAS is far faster than our scalar f64 kernel, so it takes
  // every product that is not tiny.
  if constexpr (std::is_same_v<T, double>) return g.M * g.N * g.K >= 32 * 32 * 32;
  const int64_t skinny = simd_level() == SimdLevel::avx512 ? 24 : 48;
  return g.M > kDirectMaxM && g.M < skinny && g.N * g.K >= 128 * 128 && blas_has_wide_kernels();
#else
  (void)g;
  return false;
#endif
}
}  // namespace

void set_blas_enabled(bool on) { g_blas_enabled.store(on, std::memory_order_relaxed); }
bool blas_enabled() { return g_blas_enabled.load(std::memory_order_relaxed); }

void gemm(const GemmArgs<float>& g) {
  if (use_blas(g))
    gemm_blas(g);
  else
    gemm_own(g);
}
void gemm(const GemmArgs<double>& g) {
  if (use_blas(g))
    gemm_blas(g);
  else
    gemm_own(g);
}

template <class T>
void gemm_rows(T* C, int64_t ldc, const T* A, int64_t lda, bool trans_a, const T* B, int64_t ldb, bool trans_b,
               int64_t M, int64_t N, int64_t K, T alpha, T beta) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    return;
  }
  gemm(GemmArgs<T>{.C = C,
                   .ldc = ldc,
                   .A = A,
                   .lda = lda,
                   .trans_a = trans_a,
                   .B = B,
                   .ldb = ldb,
                   .trans_b = trans_b,
                   .M = M,
                   .N = N,
                   .K = K,
                   .alpha = alpha,
                   .beta = beta});
}
template void gemm_rows<float>(float*, int64_t, const float*, int64_t, bool, const float*, int64_t, bool, int64_t,
                               int64_t, int64_t, float, float);
template void gemm_rows<double>(double*, int64_t, const double*, int64_t, bool, const double*, int64_t, bool, int64_t,
                                int64_t, int64_t, double, double);

}  // namespace tz::kernels
