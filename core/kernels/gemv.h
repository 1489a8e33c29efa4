// GEMV-like products: C = alpha * A op(B) + beta * C for a few rows of A (M <= kGemvMaxM),
// the work of decoding one token (M = 1) through linear layers. Shape letters and the
// GemmArgs layout as in gemm.h.
//
// Such products are memory-bound: each weight is used M times, so the speed is how fast B
// streams from cache or memory. The SIMD kernels (gemv_simd.inl) load every value of B
// once, into as many independent FMA chains as the registers allow, with no packing.
// The plain reference is gemm_ref; gemm.cpp's portable `gemm_direct` covers the cases the
// SIMD kernels do not (f64, SIMD off, A stored transposed).
#pragma once

#include <cstdint>

#include "core/kernels/gemm.h"

namespace tz::kernels {

constexpr int64_t kGemvMaxM = 4;

// Columns [j0, j1) of C, for g.M in 1..kGemvMaxM, A not transposed (row-major [M, K]);
// B either layout. beta == 0: C not read. Call only when tz::simd_level() allows the ISA.
void sgemv_avx2(const GemmArgs<float>& g, int64_t j0, int64_t j1);
void sgemv_avx512(const GemmArgs<float>& g, int64_t j0, int64_t j1);

// Columns [j0, j1) of C, serially, by the kernel the GEMM dispatcher (gemm.cpp) runs for
// such a product: the SIMD kernel above that tz::simd_level() allows, else the portable
// loop (also for A stored transposed). g.M in 1..kGemvMaxM. Column j's value does not
// depend on [j0, j1): callers that split the columns across their own threads (the decode
// plan, models/decode_plan.h) get the same numbers as one tensor-level linear.
void sgemv_columns(const GemmArgs<float>& g, int64_t j0, int64_t j1);

}  // namespace tz::kernels
