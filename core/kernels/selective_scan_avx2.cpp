// The selective scan's block kernels (selective_scan_simd.inl) over 8-wide f32 AVX2+FMA
// vectors, with the vectorised exp of vecmath.h (max rel. error 7.6e-8). The scalar forms
// in selective_scan.cpp are what the tests compare them with.
#include <algorithm>
#include <memory>

#include "core/kernels/scan.h"
#include "core/kernels/vecmath.h"

namespace tz::kernels::avx2 {
namespace {

struct V {
  static constexpr int W = 8;
  using vec = __m256;
  using mask = __m256i;
  static mask mask_n(int64_t n) { return simd::F8::tail_mask(int(std::clamp<int64_t>(n, 0, W))); }
  static vec zero() { return _mm256_setzero_ps(); }
  static vec set1(float x) { return _mm256_set1_ps(x); }
  static vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, vec x) { _mm256_storeu_ps(p, x); }
  static vec load_m(const float* p, mask m) { return _mm256_maskload_ps(p, m); }
  static void store_m(float* p, vec x, mask m) { _mm256_maskstore_ps(p, m, x); }
  static vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  static vec sub(vec a, vec b) { return _mm256_sub_ps(a, b); }
  static vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static vec div(vec a, vec b) { return _mm256_div_ps(a, b); }
  static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static vec exp(vec x) { return simd::exp(simd::F8(x)).v; }
  // dst[k] += sum of the 16 floats of row k, rows [16][16]: the two halves of each row
  // added, then 8 rows at a time by pairwise adds (hadd) and one exchange of 128-bit halves.
  static void add_row_sums16(float* dst, const float* rows) {
    for (int g = 0; g < 2; ++g) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) {
        const float* p = rows + (g * 8 + j) * 16;
        r[j] = _mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8));
      }
      const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(r[0], r[1]), _mm256_hadd_ps(r[2], r[3]));
      const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(r[4], r[5]), _mm256_hadd_ps(r[6], r[7]));
      const __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
      _mm256_storeu_ps(dst + g * 8, _mm256_add_ps(_mm256_loadu_ps(dst + g * 8), s));
    }
  }
};

}  // namespace

#include "core/kernels/selective_scan_simd.inl"

}  // namespace tz::kernels::avx2
