// Real FFT, its inverse and the DCT-II (math, conventions and the method in fft.h).
//
// Numerics: every twiddle and chirp is computed in double from an angle reduced to one period
// first (j k mod n, k^2 mod 2n), never by repeated multiplication, so that the error of a
// length-n transform grows like log2(n) roundings, not like n. Complex products are written
// out by hand: std::complex's operator* guards against NaN with a slow library call.
#include "core/kernels/fft.h"

#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <numbers>
#include <type_traits>

#include "core/error.h"
#include "core/parallel.h"

namespace tz::kernels {

int64_t next_pow2(int64_t n) {
  int64_t m = 1;
  while (m < n) m <<= 1;
  return m;
}

template <class Real>
struct FftPlan {
  int64_t n = 0;
  bool pow2 = false;
  std::vector<int64_t> bitrev;                // pow2: the input index each output slot reads
  std::vector<std::complex<Real>> twiddles;   // pow2: per pass of width 2h, e^{-2 pi i j / 2h}, j < h
  std::vector<std::complex<Real>> chirp;      // Bluestein: e^{-pi i k^2 / n}, k < n
  std::vector<std::complex<Real>> chirp_fft;  // Bluestein: FFT_m of conj(chirp) wrapped around
  const FftPlan* inner = nullptr;             // Bluestein: the power-of-two plan of m >= 2n - 1
  int64_t scratch = 0;                        // complex elements a call needs
};

namespace {

template <class Real>
inline std::complex<Real> cmul(std::complex<Real> a, std::complex<Real> b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

template <class Real>
inline std::complex<Real> unit(double angle) {
  return {Real(std::cos(angle)), Real(std::sin(angle))};
}

constexpr double kTwoPi = 2 * std::numbers::pi;

std::recursive_mutex& plan_mutex() {
  static std::recursive_mutex m;
  return m;
}

template <class Real>
const FftPlan<Real>& fft_plan(int64_t n) {
  static std::map<int64_t, std::unique_ptr<FftPlan<Real>>> cache;
  std::lock_guard<std::recursive_mutex> lock(plan_mutex());
  auto& slot = cache[n];
  if (slot) return *slot;
  auto p = std::make_unique<FftPlan<Real>>();
  p->n = n;
  p->pow2 = (n & (n - 1)) == 0;
  if (p->pow2) {
    int64_t bits = 0;
    while ((int64_t(1) << bits) < n) ++bits;
    p->bitrev.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
      int64_t r = 0;
      for (int64_t b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
      p->bitrev[size_t(i)] = r;
    }
    // Pass with half-width h stores its h twiddles at offset h - 1 (1 + 2 + ... + n/2 = n - 1).
    p->twiddles.resize(size_t(std::max<int64_t>(n - 1, 0)));
    for (int64_t h = 1; h < n; h <<= 1)
      for (int64_t j = 0; j < h; ++j) p->twiddles[size_t(h - 1 + j)] = unit<Real>(-kTwoPi * double(j) / double(2 * h));
  } else {
    // Bluestein: X_k = c_k sum_j (x_j c_j) conj(c_{k-j}), c_k = e^{-pi i k^2 / n}.
    const int64_t m = next_pow2(2 * n - 1);
    p->inner = &fft_plan<Real>(m);
    p->chirp.resize(size_t(n));
    for (int64_t k = 0; k < n; ++k) {
      const int64_t k2 = (k * k) % (2 * n);  // e^{-pi i k^2 / n} has period 2n in k^2
      p->chirp[size_t(k)] = unit<Real>(-std::numbers::pi * double(k2) / double(n));
    }
    std::vector<std::complex<Real>> b(size_t(m), std::complex<Real>(0, 0));
    for (int64_t k = 0; k < n; ++k) {
      b[size_t(k)] = std::conj(p->chirp[size_t(k)]);
      if (k > 0) b[size_t(m - k)] = std::conj(p->chirp[size_t(k)]);  // negative lags wrap around
    }
    fft_complex<Real>(b.data(), m, false);
    p->chirp_fft = std::move(b);
    p->scratch = m;
  }
  slot = std::move(p);
  return *slot;
}

// Radix-2 decimation in time, in place; inverse: conjugate twiddles (no 1/n). The scalar
// butterflies are the reference; f32 runs them in SIMD where the CPU has it.
template <class Real>
void radix2(std::complex<Real>* z, const FftPlan<Real>& p, bool inverse) {
  const int64_t n = p.n;
  if constexpr (std::is_same_v<Real, float>) {  // the permutation and butterflies in SIMD (fft_simd.inl)
    if (simd_level() == SimdLevel::avx512)
      return detail::fft_passes_avx512(z, n, p.twiddles.data(), p.bitrev.data(), inverse);
    if (simd_level() == SimdLevel::avx2)
      return detail::fft_passes_avx2(z, n, p.twiddles.data(), p.bitrev.data(), inverse);
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = p.bitrev[size_t(i)];
    if (r > i) std::swap(z[i], z[r]);
  }
  const Real sign = inverse ? Real(-1) : Real(1);
  for (int64_t h = 1; h < n; h <<= 1) {
    const std::complex<Real>* w = p.twiddles.data() + (h - 1);
    for (int64_t i = 0; i < n; i += 2 * h) {
      std::complex<Real>* a = z + i;
      std::complex<Real>* b = z + i + h;
      for (int64_t j = 0; j < h; ++j) {
        const std::complex<Real> wj{w[j].real(), sign * w[j].imag()};
        const std::complex<Real> t = cmul(b[j], wj);
        b[j] = a[j] - t;
        a[j] = a[j] + t;
      }
    }
  }
}

// The plan's transform, unnormalised, using scratch of p.scratch elements.
template <class Real>
void run_plan(std::complex<Real>* z, const FftPlan<Real>& p, bool inverse, std::complex<Real>* scratch) {
  if (p.pow2) return radix2(z, p, inverse);
  // The inverse as conj(forward(conj(z))).
  const int64_t n = p.n, m = p.inner->n;
  std::complex<Real>* a = scratch;
  for (int64_t k = 0; k < n; ++k) a[k] = cmul(inverse ? std::conj(z[k]) : z[k], p.chirp[size_t(k)]);
  for (int64_t k = n; k < m; ++k) a[k] = {0, 0};
  radix2(a, *p.inner, false);
  for (int64_t k = 0; k < m; ++k) a[k] = cmul(a[k], p.chirp_fft[size_t(k)]);
  radix2(a, *p.inner, true);
  const Real inv_m = Real(1) / Real(m);
  for (int64_t k = 0; k < n; ++k) {
    const std::complex<Real> v = cmul(a[k], p.chirp[size_t(k)]) * inv_m;
    z[k] = inverse ? std::conj(v) : v;
  }
}

}  // namespace

template <class Real>
void fft_complex(std::complex<Real>* z, int64_t n, bool inverse) {
  TZ_CHECK(n >= 1, "fft: length must be >= 1, got ", n);
  const FftPlan<Real>& p = fft_plan<Real>(n);
  std::vector<std::complex<Real>> scratch(size_t(p.scratch));
  run_plan(z, p, inverse, scratch.data());
  if (inverse)
    for (int64_t k = 0; k < n; ++k) z[k] /= Real(n);
}

template <class Real>
const RfftPlan<Real>& rfft_plan(int64_t n) {
  TZ_CHECK(n >= 1, "rfft: length must be >= 1, got ", n);
  static std::map<int64_t, std::unique_ptr<RfftPlan<Real>>> cache;
  std::lock_guard<std::recursive_mutex> lock(plan_mutex());
  auto& slot = cache[n];
  if (slot) return *slot;
  auto p = std::make_unique<RfftPlan<Real>>();
  p->n = n;
  const bool even = n % 2 == 0;
  const int64_t len = even ? n / 2 : n;
  p->inner = &fft_plan<Real>(len);
  if (even) {
    p->rot.resize(size_t(n / 2 + 1));
    for (int64_t k = 0; k <= n / 2; ++k) p->rot[size_t(k)] = unit<Real>(-kTwoPi * double(k) / double(n));
  }
  p->scratch = len + p->inner->scratch;
  slot = std::move(p);
  return *slot;
}

template <class Real>
void rfft(std::complex<Real>* X, const Real* x, const RfftPlan<Real>& p, std::complex<Real>* scratch) {
  const int64_t n = p.n;
  std::complex<Real>* z = scratch;
  std::complex<Real>* rest = scratch + (n % 2 == 0 ? n / 2 : n);
  if (n % 2 == 1) {
    for (int64_t j = 0; j < n; ++j) z[j] = {x[j], 0};
    run_plan(z, *p.inner, false, rest);
    for (int64_t k = 0; k <= n / 2; ++k) X[k] = z[k];
    return;
  }
  // Pack, transform n/2 points, then split: E_k = (Z_k + conj Z_{h-k}) / 2 (the evens'
  // transform), O_k = (Z_k - conj Z_{h-k}) / 2i (the odds'), X_k = E_k + e^{-2 pi i k/n} O_k.
  const int64_t h = n / 2;
  std::memcpy(static_cast<void*>(z), x, size_t(n) * sizeof(Real));  // (x_2j, x_2j+1) as complex pairs
  run_plan(z, *p.inner, false, rest);
  auto split = [&](int64_t k, int64_t at, int64_t mirror) {  // Z_k and Z_{h-k}, indices mod h
    const std::complex<Real> zk = z[at], zr = std::conj(z[mirror]);
    const std::complex<Real> e = (zk + zr) * Real(0.5);
    const std::complex<Real> d = (zk - zr) * Real(0.5);
    const std::complex<Real> o{d.imag(), -d.real()};  // d / i
    X[k] = e + cmul(p.rot[size_t(k)], o);
  };
  split(0, 0, 0);
  for (int64_t k = 1; k < h; ++k) split(k, k, h - k);
  split(h, 0, 0);
}

template <class Real>
void irfft(Real* x, const std::complex<Real>* X, const RfftPlan<Real>& p, std::complex<Real>* scratch) {
  const int64_t n = p.n;
  std::complex<Real>* z = scratch;
  std::complex<Real>* rest = scratch + (n % 2 == 0 ? n / 2 : n);
  if (n % 2 == 1) {
    z[0] = {X[0].real(), 0};
    for (int64_t k = 1; k <= n / 2; ++k) {
      z[k] = X[k];
      z[n - k] = std::conj(X[k]);
    }
    run_plan(z, *p.inner, true, rest);
    for (int64_t j = 0; j < n; ++j) x[j] = z[j].real() / Real(n);
    return;
  }
  // Undo the split: E_k = (X_k + conj X_{h-k}) / 2, O_k = (X_k - conj X_{h-k}) / (2 e^{-2 pi i k/n}),
  // Z_k = E_k + i O_k; the inverse transform of Z holds the pairs (x_{2j}, x_{2j+1}).
  const int64_t h = n / 2;
  auto merge = [&](int64_t k, std::complex<Real> a, std::complex<Real> b) {  // a = X_k, b = conj X_{h-k}
    const std::complex<Real> e = (a + b) * Real(0.5);
    const std::complex<Real> o = cmul((a - b) * Real(0.5), std::conj(p.rot[size_t(k)]));
    z[k] = {e.real() - o.imag(), e.imag() + o.real()};  // e + i o
  };
  merge(0, {X[0].real(), 0}, {X[h].real(), 0});  // the imaginary parts of X_0, X_{n/2} are ignored
  for (int64_t k = 1; k < h; ++k) merge(k, X[k], std::conj(X[h - k]));
  run_plan(z, *p.inner, true, rest);
  const Real inv_h = Real(1) / Real(h);
  const Real* zr = reinterpret_cast<const Real*>(z);  // the pairs in order: x_0, x_1, ...
  for (int64_t j = 0; j < n; ++j) x[j] = zr[j] * inv_h;
}

template <class Real>
void rfft(std::complex<Real>* X, const Real* x, int64_t n) {
  const RfftPlan<Real>& p = rfft_plan<Real>(n);
  std::vector<std::complex<Real>> scratch(size_t(p.scratch));
  rfft(X, x, p, scratch.data());
}

template <class Real>
void irfft(Real* x, const std::complex<Real>* X, int64_t n) {
  const RfftPlan<Real>& p = rfft_plan<Real>(n);
  std::vector<std::complex<Real>> scratch(size_t(p.scratch));
  irfft(x, X, p, scratch.data());
}

// ---- references: the sums of the definitions ------------------------------------------------

// e^{-2 pi i m / n} for m < n: the references index it by (j k) mod n.
std::vector<std::complex<double>> unit_table(int64_t n) {
  std::vector<std::complex<double>> t(static_cast<size_t>(n));
  for (int64_t m = 0; m < n; ++m)
    t[size_t(m)] = {std::cos(kTwoPi * double(m) / double(n)), -std::sin(kTwoPi * double(m) / double(n))};
  return t;
}

template <class Real>
void rfft_ref(std::complex<Real>* X, const Real* x, int64_t n) {
  const std::vector<std::complex<double>> w = unit_table(n);
  for (int64_t k = 0; k <= n / 2; ++k) {
    double re = 0, im = 0;
    for (int64_t j = 0; j < n; ++j) {
      const std::complex<double> e = w[size_t((j * k) % n)];
      re += double(x[j]) * e.real();
      im += double(x[j]) * e.imag();
    }
    X[k] = {Real(re), Real(im)};
  }
}

template <class Real>
void irfft_ref(Real* x, const std::complex<Real>* X, int64_t n) {
  const std::vector<std::complex<double>> w = unit_table(n);
  for (int64_t j = 0; j < n; ++j) {
    double s = 0;
    for (int64_t k = 0; k < n; ++k) {
      // X_k for k <= n/2, conj(X_{n-k}) above; only the real part of the sum is kept.
      const bool low = k <= n / 2;
      std::complex<double> v(double(X[low ? k : n - k].real()), double(X[low ? k : n - k].imag()));
      if (!low) v = std::conj(v);
      if (k == 0 || 2 * k == n) v = {v.real(), 0};
      const std::complex<double> e = std::conj(w[size_t((j * k) % n)]);  // e^{+2 pi i jk/n}
      s += v.real() * e.real() - v.imag() * e.imag();
    }
    x[j] = Real(s / double(n));
  }
}

// ---- DCT-II ----------------------------------------------------------------------------------

template <class Real>
void dct2(Real* y, const Real* x, int64_t n) {
  TZ_CHECK(n >= 1, "dct2: length must be >= 1, got ", n);
  // Makhoul: v = (x_0, x_2, x_4, ..., x_5, x_3, x_1), V = DFT(v), y_k = Re(e^{-pi i k / 2n} V_k).
  std::vector<Real> v(static_cast<size_t>(n));
  for (int64_t j = 0; 2 * j < n; ++j) v[size_t(j)] = x[2 * j];
  for (int64_t j = 0; 2 * j + 1 < n; ++j) v[size_t(n - 1 - j)] = x[2 * j + 1];
  std::vector<std::complex<Real>> V(size_t(n / 2 + 1));
  rfft(V.data(), v.data(), n);
  for (int64_t k = 0; k < n; ++k) {
    const std::complex<Real> Vk = k <= n / 2 ? V[size_t(k)] : std::conj(V[size_t(n - k)]);
    const std::complex<Real> r = unit<Real>(-std::numbers::pi * double(k) / double(2 * n));
    y[k] = r.real() * Vk.real() - r.imag() * Vk.imag();
  }
}

template <class Real>
void dct2_ref(Real* y, const Real* x, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    double s = 0;
    for (int64_t j = 0; j < n; ++j)
      s += double(x[j]) * std::cos(std::numbers::pi * double(((2 * j + 1) * k) % (4 * n)) / double(2 * n));
    y[k] = Real(s);
  }
}

#define TZ_FFT_INSTANTIATE(R)                                                               \
  template struct FftPlan<R>;                                                               \
  template const RfftPlan<R>& rfft_plan<R>(int64_t);                                        \
  template void rfft<R>(std::complex<R>*, const R*, const RfftPlan<R>&, std::complex<R>*);  \
  template void irfft<R>(R*, const std::complex<R>*, const RfftPlan<R>&, std::complex<R>*); \
  template void rfft<R>(std::complex<R>*, const R*, int64_t);                               \
  template void irfft<R>(R*, const std::complex<R>*, int64_t);                              \
  template void rfft_ref<R>(std::complex<R>*, const R*, int64_t);                           \
  template void irfft_ref<R>(R*, const std::complex<R>*, int64_t);                          \
  template void fft_complex<R>(std::complex<R>*, int64_t, bool);                            \
  template void dct2<R>(R*, const R*, int64_t);                                             \
  template void dct2_ref<R>(R*, const R*, int64_t);
TZ_FFT_INSTANTIATE(float)
TZ_FFT_INSTANTIATE(double)
#undef TZ_FFT_INSTANTIATE

}  // namespace tz::kernels
