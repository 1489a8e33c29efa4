// Shared helpers for the test suites. Each test includes the headers it uses itself:
// tensorzoo.h is the embedding surface for applications, not the tests' include.
#pragma once

#include <doctest/doctest.h>

#include <time.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/copy.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace tz::testing {

// Relative RMS error ||a - b|| / max(||b||, tiny); NaN or Inf anywhere, or different
// shapes, give +inf, so a comparison with it always fails. (No doctest assertions in here:
// these helpers are also called from INFO/CAPTURE messages.)
inline double rel_rms(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) return INFINITY;
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

// CPU time of the calling thread: a measure of work that other processes on a busy machine
// do not inflate (for tests of how cost grows, never of speed).
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double d = std::abs(x[i] - y[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// Relative max error max|a - b| / max|b|; NaN or Inf in a, or different sizes, give +inf.
inline double rel_max(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  if (x.size() != y.size()) return INFINITY;
  double m = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    m = std::max(m, std::abs(x[i] - y[i]));
    n = std::max(n, std::abs(y[i]));
  }
  return m / std::max(n, 1e-300);
}

inline bool all_finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

// CHECK_CLOSE(actual, expected, tol): relative RMS error at most tol.
#define CHECK_CLOSE(a, b, tol)                                                                                        \
  CHECK_MESSAGE(::tz::testing::rel_rms((a), (b)) <= (tol), "rel rms error ", ::tz::testing::rel_rms((a), (b)), " > ", \
                (tol))

// A non-contiguous copy of t (same values): stored transposed in the last two dims, or
// with a stride of 2 for 1-D tensors.
inline Tensor non_contiguous(const Tensor& t) {
  if (t.dim() >= 2) {
    Tensor s = t.transpose(-1, -2).contiguous().detach();
    return s.transpose(-1, -2).detach();
  }
  Shape s2 = t.shape();
  if (s2.empty()) return t;
  s2.back() *= 2;
  Tensor big = zeros(s2, t.dtype());
  Tensor v = big.slice(-1, 0, s2.back(), 2).detach();
  core::copy_(v, t);
  return v;
}

// Sets the SIMD level for a scope and restores the previous one.
struct SimdLevelGuard {
  SimdLevel prev = simd_level();
  explicit SimdLevelGuard(SimdLevel level) { set_simd_level(level); }
  ~SimdLevelGuard() { set_simd_level(prev); }
};

// The SIMD levels this CPU runs, widest first, then off (the portable loops).
inline std::vector<SimdLevel> simd_levels() {
  std::vector<SimdLevel> ls;
  if (cpu_has_avx512()) ls.push_back(SimdLevel::avx512);
  if (cpu_has_avx2_fma()) ls.push_back(SimdLevel::avx2);
  ls.push_back(SimdLevel::off);
  return ls;
}

}  // namespace tz::testing
