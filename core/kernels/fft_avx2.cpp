// The f32 FFT butterfly passes over AVX2 vectors of 4 complex (fft_simd.inl); compiled with
// -mavx2 -mfma, chosen by fft.cpp when tz::simd_level() is avx2.
#include <immintrin.h>

#include <complex>
#include <cstdint>
#include <vector>

#include "core/kernels/fft.h"

namespace tz::kernels::detail {
namespace avx2_fft {
namespace {

struct V {
  static constexpr int64_t kComplex = 4;
  using type = __m256;
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
  static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
  static __m256 sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
  static __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
  static __m256 fmaddsub(__m256 a, __m256 b, __m256 c) { return _mm256_fmaddsub_ps(a, b, c); }
  static __m256 dup_re(__m256 v) { return _mm256_moveldup_ps(v); }
  static __m256 dup_im(__m256 v) { return _mm256_movehdup_ps(v); }
  static __m256 swap(__m256 v) { return _mm256_permute_ps(v, 0xB1); }
  static __m256 sign_im(float s) { return _mm256_setr_ps(1, s, 1, s, 1, s, 1, s); }
};

#include "core/kernels/fft_simd.inl"

}  // namespace
}  // namespace avx2_fft

void fft_passes_avx2(std::complex<float>* z, int64_t n, const std::complex<float>* twiddles, const int64_t* bitrev,
                     bool inverse) {
  avx2_fft::butterfly_passes(z, n, twiddles, bitrev, inverse);
}

}  // namespace tz::kernels::detail
