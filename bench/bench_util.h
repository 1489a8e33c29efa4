// What the benchmark programs share: wall time, the median of repeated measurements, lists.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace tz::bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The median (the mean of the middle two for an even count); robust to a slow first rep.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// "head,delta" -> {"head", "delta"}.
inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> r;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) r.push_back(x);
  return r;
}

// "256,1024,4096" -> {256, 1024, 4096}.
inline std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> r;
  for (const std::string& x : split(s)) r.push_back(std::stoll(x));
  return r;
}

// --isa avx512|avx2|scalar: the SIMD level of tensorzoo's kernels (tz::set_simd_level), so
// that the AVX2 path can be measured on an AVX-512 machine. A level this CPU lacks is an
// error, not a quiet step down. (OpenBLAS, behind the large GEMMs, chooses its own kernels:
// OPENBLAS_CORETYPE=Haswell holds it to AVX2; run_gpt_bench.sh sets both.)
inline void set_isa(const std::string& name) {
  const SimdLevel level = name == "avx512" ? SimdLevel::avx512
                          : name == "avx2" ? SimdLevel::avx2
                          : name == "scalar" ? SimdLevel::off
                                             : throw Error(cat_str("--isa must be avx512, avx2 or scalar, got '", name, "'"));
  TZ_CHECK(level != SimdLevel::avx512 || cpu_has_avx512(), "--isa avx512: this CPU has no AVX-512 (F/DQ/BW/VL)");
  TZ_CHECK(level != SimdLevel::avx2 || cpu_has_avx2_fma(), "--isa avx2: this CPU has no AVX2 with FMA");
  set_simd_level(level);
}

}  // namespace tz::bench
