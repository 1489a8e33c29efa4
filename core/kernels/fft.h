// The real discrete Fourier transform of any length, its inverse, and the DCT-II built on it.
//
// Shape letters: n = the transform length, M = n / 2 + 1 the kept half spectrum.
//   rfft:   X_k = sum_{j<n} x_j e^{-2 pi i j k / n},          k = 0..M-1  (x real, so
//           X_{n-k} = conj(X_k): the other half is not stored)
//   irfft:  x_j = (1/n) sum_{k<n} X_k e^{+2 pi i j k / n}      j = 0..n-1, with X_{n-k} taken as
//           conj(X_k); the imaginary parts of X_0 and (n even) X_{n/2} are ignored, so
//           irfft(rfft(x)) = x.
//   dct2:   y_k = sum_{j<n} x_j cos(pi (2j + 1) k / (2n)),    k = 0..n-1  (unnormalised: half
//           of SciPy's type-2 DCT with norm=None)
// Spectra are std::complex<Real> arrays (real, imaginary pairs in memory).
//
// How (fft.cpp): the complex FFT of a power-of-two length is the iterative radix-2
// Cooley-Tukey transform (bit-reversal permutation, then log2 n butterfly passes) with
// twiddles precomputed in double (the f32 butterflies in AVX2 or AVX-512 where the CPU has
// them: fft_simd.inl); any other length goes through Bluestein's chirp-z
// identity jk = (j^2 + k^2 - (k - j)^2) / 2, which turns the DFT into a convolution done by
// power-of-two FFTs of length >= 2n - 1. A real transform of even length n is one complex
// transform of length n / 2 on the packed pairs z_j = x_{2j} + i x_{2j+1}; odd lengths use the
// complex transform of length n. The DCT-II reorders x (evens ascending, then odds
// descending: Makhoul 1980) and rotates an rfft of the same length.
// Plans (twiddles, bit reversal, Bluestein's chirp and its spectrum) are built once per
// (length, precision) and cached; building is guarded by a mutex, running is lock-free, so
// many threads may transform with one plan, each with its own scratch.
#pragma once

#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

namespace tz::kernels {

template <class Real>
struct FftPlan;  // a complex transform of one length (fft.cpp)

// The real transform of one length: a plan and the scratch size it needs.
template <class Real>
struct RfftPlan {
  int64_t n = 0;
  const FftPlan<Real>* inner = nullptr;  // complex transform of n / 2 (n even) or n (n odd)
  std::vector<std::complex<Real>> rot;   // e^{-2 pi i k / n}, k < n / 2 + 1 (n even)
  int64_t scratch = 0;                   // complex elements of scratch one call needs
};

// The cached plan for length n >= 1 (thread-safe; the reference stays valid).
template <class Real>
const RfftPlan<Real>& rfft_plan(int64_t n);

// With a plan and scratch of plan.scratch elements (X: M outputs, x: n inputs).
template <class Real>
void rfft(std::complex<Real>* X, const Real* x, const RfftPlan<Real>& plan, std::complex<Real>* scratch);
template <class Real>
void irfft(Real* x, const std::complex<Real>* X, const RfftPlan<Real>& plan, std::complex<Real>* scratch);
// Convenience forms: fetch the plan and allocate the scratch.
template <class Real>
void rfft(std::complex<Real>* X, const Real* x, int64_t n);
template <class Real>
void irfft(Real* x, const std::complex<Real>* X, int64_t n);

// The O(n^2) sums of the definitions above, angles reduced mod n (the references).
template <class Real>
void rfft_ref(std::complex<Real>* X, const Real* x, int64_t n);
template <class Real>
void irfft_ref(Real* x, const std::complex<Real>* X, int64_t n);

// Complex transforms of any length (forward: e^{-2 pi i jk/n}; inverse: e^{+...} / n), in place.
template <class Real>
void fft_complex(std::complex<Real>* z, int64_t n, bool inverse);

// DCT-II (definition above) and its O(n^2) reference.
template <class Real>
void dct2(Real* y, const Real* x, int64_t n);
template <class Real>
void dct2_ref(Real* y, const Real* x, int64_t n);

// The smallest power of two >= n.
int64_t next_pow2(int64_t n);

namespace detail {
// A power-of-two f32 transform in place: its bit-reversal permutation and butterfly passes
// (fft_avx2.cpp, fft_avx512.cpp; fft.cpp calls them at the matching tz::simd_level()).
// twiddles: the plan's table, e^{-2 pi i j / 2h} at index h - 1 + j; bitrev: the input index
// each output slot reads.
void fft_passes_avx2(std::complex<float>* z, int64_t n, const std::complex<float>* twiddles, const int64_t* bitrev,
                     bool inverse);
void fft_passes_avx512(std::complex<float>* z, int64_t n, const std::complex<float>* twiddles, const int64_t* bitrev,
                       bool inverse);
}  // namespace detail

}  // namespace tz::kernels
