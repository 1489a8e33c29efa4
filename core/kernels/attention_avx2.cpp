// AVX2+FMA tile primitives of the fused attention (f32): attention_simd.inl over 8-float ymm
// vectors; shapes and math in attention.h. Compiled with -mavx2 -mfma; callers check
// tz::simd_enabled() first.
//
// Measured alternative (B 8, H 4, T 256, D 64, causal, 1 thread, 64 x 64 tiles): packing
// each tile and running the 6x16 GEMM micro-kernel of gemm_avx2.cpp instead gave the same
// time within noise (forward ~7.2 ms, forward + backward ~26 ms, ~48 GFLOP/s), so we keep
// these simpler kernels that need no packing or scratch buffers.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/attention.h"

namespace tz::kernels::avx2 {
namespace {

struct V {
  static constexpr int kLanes = 8;
  static constexpr int kDotRows = 2;  // 2 x 4 dot accumulators + 4 + 1 operands of 16 ymm
  static constexpr int kAccVecs = 2;  // 4 rows x 16 columns
  using type = __m256;
  using mask = __m256i;
  static __m256 zero() { return _mm256_setzero_ps(); }
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256i mask_n(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::min<int64_t>(n, 8))),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static __m256 load_m(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static void store_m(float* p, __m256 v, __m256i m) { _mm256_maskstore_ps(p, m, v); }
  static __m256 set1(float x) { return _mm256_set1_ps(x); }
  static __m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  }
};

}  // namespace

#include "core/kernels/attention_simd.inl"

}  // namespace tz::kernels::avx2
