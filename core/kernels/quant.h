// Weights in fewer bytes for inference: two storage formats for a weight matrix W [N, K]
// (N output rows, K the reduction dim, as linear's x W^T), their quantize / dequantize, and
// the GEMV kernels y [M, N] = x [M, K] W^T (+ bias) for the few rows M <= kQuantGemvMaxM of
// decoding. Shape letters: M rows of x, N rows of W (outputs), K inputs, b a block of K.
//
//   q8_0  (as llama.cpp's Q8_0) every block of 32 consecutive weights along K of a row has
//         one f32 scale d = max|w| / 127 and int8 values q = round(w / d) in [-127, 127]:
//         w ~ d q, with |w - d q| <= d / 2. 1.125 bytes per weight (f32: 4).
//   bf16  the top 16 bits of the f32, rounded to nearest even: relative error <= 2^-9.
//         2 bytes per weight.
//
// Kernels: a plain reference per format (gemv_*_ref) and SIMD versions (gemv_quant_avx2.cpp,
// gemv_quant_avx512.cpp, and gemv_quant_avx512x.cpp for the VNNI and BF16 extensions), each
// listed by quant_gemv_kernels() so the tests compare every one the CPU runs with its
// reference. Two semantics for q8_0:
//   dequant  x stays f32; each weight is widened to d q in registers (exactly the reference
//            gemv_q8_0_ref up to summation order)
//   q8q8     x is quantized too, per block of 32 like the weights (dx, qx), and each block is
//            an exact integer dot product: y = sum_b d_b dx_b sum_k q qx (gemv_q8q8_ref).
//            The int8 dot-product instructions (AVX2 vpmaddubsw, AVX-512 VNNI vpdpbusd) do
//            this; it adds x's own rounding (|x - dx qx| <= dx / 2) to the weights'.
// gemv_q8_0 / gemv_bf16 choose by tz::simd_level() and the CPU's extensions, split the
// output rows across threads, run a short prompt as GEMVs of kQuantGemvMaxM rows at a time,
// and a longer one as a GEMM over tiles of W dequantized to f32 (a tile of rows at a time:
// never a whole f32 copy of W).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tz::kernels {

constexpr int64_t kQ8Block = 32;
constexpr int64_t kQuantGemvMaxM = 4;

// ---- formats ---------------------------------------------------------------------------------

// W [N, K] (row-major, K % kQ8Block == 0) -> q [N, K] and scales [N, K / kQ8Block].
void quantize_q8_0(int8_t* q, float* scales, const float* w, int64_t N, int64_t K);
void dequantize_q8_0(float* w, const int8_t* q, const float* scales, int64_t N, int64_t K);
// n values, f32 <-> bf16 bits (round to nearest even; NaN stays NaN).
void quantize_bf16(uint16_t* out, const float* w, int64_t n);
void dequantize_bf16(float* out, const uint16_t* in, int64_t n);

// ---- GEMV ------------------------------------------------------------------------------------

// y [M, N] (row stride ldy) = x [M, K] (row stride ldx) W^T + bias (bias may be null).
struct QuantGemvArgs {
  float* y = nullptr;
  int64_t ldy = 0;
  const float* x = nullptr;
  int64_t ldx = 0;
  int64_t M = 0, N = 0, K = 0;
  const float* bias = nullptr;
};

// x quantized per block for the q8q8 kernels (rows of stride K / K / 32 / K / 4):
//   q    int8 round(x / d), |q| <= 127        d  max|x| / 127 per block (0: block of zeros)
//   a    |q| as uint8, the unsigned operand of vpmaddubsw and vpdpbusd (the sign of q is
//        moved onto the weight)
//   neg  that sign per 64 values, one bit each (bit j of neg[k / 64]: q[k + j] < 0), as the
//        mask that negates the weights of an AVX-512 chunk; rows of ceil(K / 64)
//   dl   d per 4-value lane of an AVX-512 dot-product chunk: dl[k / 4] = d[k / 32], so a
//        chunk's 16 lane scales are one load
struct Q8Activations {
  int64_t M = 0, K = 0;
  std::vector<int8_t> q;
  std::vector<uint8_t> a;
  std::vector<uint64_t> neg;
  std::vector<float> d, dl;
};
// Every row of x (finite values), at the current tz::simd_level(): the AVX-512 form gives
// the plain one's bytes exactly (quantize_activations_ref, and the test that compares them).
void quantize_activations(Q8Activations& out, const QuantGemvArgs& g);
void quantize_activations_ref(Q8Activations& out, const QuantGemvArgs& g);
// One row of K values at AVX-512 into q, a, neg, d, dl (the row's slices of Q8Activations).
void quantize_row_avx512(int8_t* q, uint8_t* a, uint64_t* neg, float* d, float* dl, const float* x, int64_t K);

// A kernel computes output columns [n0, n1) of y for M in 1..kQuantGemvMaxM.
using Q8GemvFn = void (*)(const QuantGemvArgs& g, const Q8Activations& xq, const int8_t* q, const float* scales,
                          int64_t n0, int64_t n1);
using Bf16GemvFn = void (*)(const QuantGemvArgs& g, const uint16_t* w, int64_t n0, int64_t n1);

// The references (plain loops, f64 sums per block for the q8q8 one so its integer dots are exact).
void gemv_q8_0_ref(const QuantGemvArgs& g, const Q8Activations& xq, const int8_t* q, const float* scales, int64_t n0,
                   int64_t n1);  // dequant semantics: xq unused
void gemv_q8q8_ref(const QuantGemvArgs& g, const Q8Activations& xq, const int8_t* q, const float* scales, int64_t n0,
                   int64_t n1);
void gemv_bf16_ref(const QuantGemvArgs& g, const uint16_t* w, int64_t n0, int64_t n1);

// The SIMD kernels; call only when the CPU has the ISA (quant_gemv_kernels() checks).
void gemv_q8q8_avx2(const QuantGemvArgs&, const Q8Activations&, const int8_t*, const float*, int64_t, int64_t);
void gemv_q8_0_avx2(const QuantGemvArgs&, const Q8Activations&, const int8_t*, const float*, int64_t, int64_t);
void gemv_bf16_avx2(const QuantGemvArgs&, const uint16_t*, int64_t, int64_t);
void gemv_q8_0_avx512(const QuantGemvArgs&, const Q8Activations&, const int8_t*, const float*, int64_t, int64_t);
void gemv_bf16_avx512(const QuantGemvArgs&, const uint16_t*, int64_t, int64_t);
void gemv_q8q8_avx512vnni(const QuantGemvArgs&, const Q8Activations&, const int8_t*, const float*, int64_t, int64_t);
void gemv_bf16_avx512bf16(const QuantGemvArgs&, const uint16_t*, int64_t, int64_t);

// Whether the CPU has AVX-512 VNNI (vpdpbusd) and AVX-512 BF16 (vdpbf16ps), on top of the
// AVX-512 that tz::cpu_has_avx512() checks.
bool cpu_has_avx512_vnni();
bool cpu_has_avx512_bf16();

// Every kernel of a format with its name, the one it is tested against, and whether this CPU
// runs it. `level` is the tz::SimdLevel it belongs to (0 off, 1 avx2, 2 avx512).
struct Q8Kernel {
  const char* name;
  Q8GemvFn fn;
  Q8GemvFn reference;
  int level;
  bool runs;
};
struct Bf16Kernel {
  const char* name;
  Bf16GemvFn fn;
  int level;
  bool runs;
};
std::vector<Q8Kernel> q8_gemv_kernels();
std::vector<Bf16Kernel> bf16_gemv_kernels();

// The kernel gemv_q8_0 / gemv_bf16 use at the current tz::simd_level(): the fastest measured
// for the CPU (docs/performance.md), or the one named by TZ_Q8_KERNEL / TZ_BF16_KERNEL (read
// once; an unknown or unavailable name is an error listing the choices).
const Q8Kernel& q8_gemv_kernel();
const Bf16Kernel& bf16_gemv_kernel();

// y = x W^T + bias for any M (see the top of this file); threads over output rows.
void gemv_q8_0(const QuantGemvArgs& g, const int8_t* q, const float* scales);
void gemv_bf16(const QuantGemvArgs& g, const uint16_t* w);

}  // namespace tz::kernels
