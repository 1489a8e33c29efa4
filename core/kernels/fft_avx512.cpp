// The f32 FFT butterfly passes over AVX-512 vectors of 8 complex (fft_simd.inl); compiled
// for AVX-512 F/DQ/BW/VL, chosen by fft.cpp when tz::simd_level() is avx512.
#include <immintrin.h>

#include <complex>
#include <cstdint>
#include <vector>

#include "core/kernels/fft.h"

namespace tz::kernels::detail {
namespace avx512_fft {
namespace {

struct V {
  static constexpr int64_t kComplex = 8;
  using type = __m512;
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
  static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
  static __m512 sub(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
  static __m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
  static __m512 fmaddsub(__m512 a, __m512 b, __m512 c) { return _mm512_fmaddsub_ps(a, b, c); }
  static __m512 dup_re(__m512 v) { return _mm512_moveldup_ps(v); }
  static __m512 dup_im(__m512 v) { return _mm512_movehdup_ps(v); }
  static __m512 swap(__m512 v) { return _mm512_permute_ps(v, 0xB1); }
  static __m512 sign_im(float s) { return _mm512_setr_ps(1, s, 1, s, 1, s, 1, s, 1, s, 1, s, 1, s, 1, s); }
};

#include "core/kernels/fft_simd.inl"

}  // namespace
}  // namespace avx512_fft

void fft_passes_avx512(std::complex<float>* z, int64_t n, const std::complex<float>* twiddles, const int64_t* bitrev,
                     bool inverse) {
  avx512_fft::butterfly_passes(z, n, twiddles, bitrev, inverse);
}

}  // namespace tz::kernels::detail
