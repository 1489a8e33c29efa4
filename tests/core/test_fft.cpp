// The real FFT (core/kernels/fft.h) against the O(n^2) DFT at lengths 1, 2, 3, 7, 64, 1000,
// 4096 (powers of two through radix-2, the others through Bluestein; even lengths through the
// packed half-length transform, odd ones through the full complex one), the round trip,
// Parseval's identity, the f32 path, and the DCT-II against its O(n^2) sum.
#include <cmath>
#include <complex>
#include <vector>

#include "core/error.h"
#include "core/kernels/fft.h"
#include "core/random.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

template <class T>
std::vector<T> randvec(int64_t n, uint64_t seed) {
  Generator gen(seed);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& e : v) e = T(gen.normal());
  return v;
}

// max_k |a_k - b_k| / max_k |b_k|
template <class V>
double rel_max(const V& a, const V& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    if (!std::isfinite(d)) return INFINITY;
    num = std::max(num, d);
    den = std::max(den, double(std::abs(b[i])));
  }
  return num / std::max(den, 1e-300);
}

const int64_t kLengths[] = {1, 2, 3, 7, 64, 1000, 4096};
}  // namespace

TEST_CASE("rfft == the O(n^2) DFT in f64 to 1e-12, irfft inverts it, Parseval") {
  double worst_fwd = 0, worst_inv = 0, worst_round = 0, worst_parseval = 0;
  for (int64_t n : kLengths) {
    CAPTURE(n);
    const int64_t M = n / 2 + 1;
    std::vector<double> x = randvec<double>(n, 100 + uint64_t(n));
    std::vector<std::complex<double>> X(static_cast<size_t>(M)), Xr(static_cast<size_t>(M));
    kernels::rfft(X.data(), x.data(), n);
    kernels::rfft_ref(Xr.data(), x.data(), n);
    const double fwd = rel_max(X, Xr);
    CHECK(fwd <= 1e-12);
    // irfft of a spectrum that is not an rfft output (random imaginary parts at 0 and n/2 too)
    std::vector<double> re = randvec<double>(M, 7 + uint64_t(n)), im = randvec<double>(M, 9 + uint64_t(n));
    std::vector<std::complex<double>> S(static_cast<size_t>(M));
    for (int64_t k = 0; k < M; ++k) S[size_t(k)] = {re[size_t(k)], im[size_t(k)]};
    std::vector<double> s(static_cast<size_t>(n)), sr(static_cast<size_t>(n));
    kernels::irfft(s.data(), S.data(), n);
    kernels::irfft_ref(sr.data(), S.data(), n);
    const double inv = rel_max(s, sr);
    CHECK(inv <= 1e-12);
    std::vector<double> back(static_cast<size_t>(n));
    kernels::irfft(back.data(), X.data(), n);
    const double round = rel_max(back, x);
    CHECK(round <= 1e-12);
    // Parseval: sum x^2 = (1/n) sum_{k<n} |X_k|^2, the stored half counted twice except k = 0, n/2
    double ex = 0, eX = 0;
    for (double v : x) ex += v * v;
    for (int64_t k = 0; k < M; ++k) eX += (k == 0 || 2 * k == n ? 1.0 : 2.0) * std::norm(X[size_t(k)]);
    const double parseval = std::abs(ex - eX / double(n)) / ex;
    CHECK(parseval <= 1e-12);
    worst_fwd = std::max(worst_fwd, fwd);
    worst_inv = std::max(worst_inv, inv);
    worst_round = std::max(worst_round, round);
    worst_parseval = std::max(worst_parseval, parseval);
  }
  MESSAGE("f64 rfft vs DFT ", worst_fwd, ", irfft vs DFT ", worst_inv, ", round trip ", worst_round, ", Parseval ",
          worst_parseval);
}

TEST_CASE("rfft in f32 against the DFT, and a wrong spectrum is caught") {
  for (int64_t n : kLengths) {
    CAPTURE(n);
    std::vector<float> x = randvec<float>(n, 300 + uint64_t(n));
    std::vector<std::complex<float>> X(static_cast<size_t>(n / 2 + 1)), Xr(static_cast<size_t>(n / 2 + 1));
    kernels::rfft(X.data(), x.data(), n);
    kernels::rfft_ref(Xr.data(), x.data(), n);
    CHECK(rel_max(X, Xr) <= 2e-6);
    std::vector<float> back(static_cast<size_t>(n));
    kernels::irfft(back.data(), X.data(), n);
    CHECK(rel_max(back, x) <= 2e-6);
  }
  // The comparison can fail: one bin moved by 1e-9 of the largest shows.
  std::vector<double> x = randvec<double>(64, 5);
  std::vector<std::complex<double>> X(33), Xr(33);
  kernels::rfft(X.data(), x.data(), 64);
  kernels::rfft_ref(Xr.data(), x.data(), 64);
  X[5] += 1e-8;
  CHECK(rel_max(X, Xr) > 1e-12);
}

TEST_CASE("complex fft of any length inverts itself, length 0 is an error") {
  for (int64_t n : {1, 5, 12, 64, 100}) {
    CAPTURE(n);
    std::vector<double> re = randvec<double>(n, 40 + uint64_t(n)), im = randvec<double>(n, 50 + uint64_t(n));
    std::vector<std::complex<double>> z(static_cast<size_t>(n)), z0;
    for (int64_t i = 0; i < n; ++i) z[size_t(i)] = {re[size_t(i)], im[size_t(i)]};
    z0 = z;
    kernels::fft_complex(z.data(), n, false);
    // X_1 by its definition
    std::complex<double> x1 = 0;
    for (int64_t j = 0; j < n; ++j) x1 += z0[size_t(j)] * std::polar(1.0, -2 * M_PI * double(j) / double(n));
    CHECK(std::abs(z[n > 1 ? 1 : 0] - (n > 1 ? x1 : z0[0])) <= 1e-12 * double(n));
    kernels::fft_complex(z.data(), n, true);
    CHECK(rel_max(z, z0) <= 1e-13);
  }
  std::vector<double> x(1);
  std::vector<std::complex<double>> X(1);
  CHECK_THROWS_AS(kernels::rfft(X.data(), x.data(), 0), Error);
}

TEST_CASE("dct2 == its O(n^2) sum (f64 1e-12, f32 1e-5)") {
  double worst = 0;
  for (int64_t n : {1, 2, 3, 7, 8, 64, 100, 1000}) {
    CAPTURE(n);
    std::vector<double> x = randvec<double>(n, 200 + uint64_t(n)), y(static_cast<size_t>(n)),
                        yr(static_cast<size_t>(n));
    kernels::dct2(y.data(), x.data(), n);
    kernels::dct2_ref(yr.data(), x.data(), n);
    const double e = rel_max(y, yr);
    CHECK(e <= 1e-12);
    worst = std::max(worst, e);
    std::vector<float> xf(x.begin(), x.end()), yf(static_cast<size_t>(n)), yrf(static_cast<size_t>(n));
    kernels::dct2(yf.data(), xf.data(), n);
    kernels::dct2_ref(yrf.data(), xf.data(), n);
    CHECK(rel_max(yf, yrf) <= 1e-5);
  }
  // y_0 = sum x, y_1 of [1, 0] = cos(pi / 4): the convention, checked by hand
  std::vector<double> x{1, 0}, y(2);
  kernels::dct2(y.data(), x.data(), 2);
  CHECK(std::abs(y[0] - 1) <= 1e-15);
  CHECK(std::abs(y[1] - std::cos(M_PI / 4)) <= 1e-15);
  MESSAGE("dct2 vs its sum, f64: ", worst);
}

TEST_CASE("f32 power-of-two transforms at every SIMD level match the f64 DFT") {
  // Lengths below, at and above each vector width of complex pairs (4 in AVX2, 8 in AVX-512),
  // so every pass kind runs: the first two as one, the scalar ones, the vector ones.
  for (SimdLevel level : testing::simd_levels()) {
    testing::SimdLevelGuard guard(level);
    for (int64_t n : {2, 4, 8, 16, 32, 64, 128, 2048, 8192}) {
      CAPTURE(simd_level_name(level));
      CAPTURE(n);
      std::vector<float> x = randvec<float>(n, 900 + uint64_t(n));
      std::vector<double> xd(x.begin(), x.end());
      std::vector<std::complex<float>> X(size_t(n / 2 + 1));
      std::vector<std::complex<double>> Xr(size_t(n / 2 + 1));
      kernels::rfft(X.data(), x.data(), n);
      kernels::rfft_ref(Xr.data(), xd.data(), n);
      std::vector<std::complex<double>> Xd(X.begin(), X.end());
      CHECK(rel_max(Xd, Xr) <= 1e-6);
      std::vector<float> back(static_cast<size_t>(n));
      kernels::irfft(back.data(), X.data(), n);
      CHECK(rel_max(back, x) <= 1e-6);
    }
  }
}

}  // namespace tz::testing
