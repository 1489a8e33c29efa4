// What the benchmark programs share: wall time, the median of repeated measurements, lists,
// command-line flags.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
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

// The whole number s spells, all of it, or an error naming the flag and what it got.
inline int64_t parse_whole(const std::string& flag, const std::string& s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    throw Error(cat_str(flag, " takes a whole number, got '", s, "'"));
  return v;
}

// "256,1024,4096" -> {256, 1024, 4096}; flag names the list in an error.
inline std::vector<int64_t> parse_list(const std::string& s, const std::string& flag = "a list") {
  std::vector<int64_t> r;
  for (const std::string& x : split(s)) r.push_back(parse_whole(flag, x));
  if (r.empty()) throw Error(cat_str(flag, " takes whole numbers separated by commas, got '", s, "'"));
  return r;
}

// --isa avx512|avx2|scalar: the SIMD level of tensorzoo's kernels (tz::set_simd_level), so
// that the AVX2 path can be measured on an AVX-512 machine. A level this CPU lacks is an
// error, not a quiet step down. (OpenBLAS, behind the large GEMMs, chooses its own kernels:
// OPENBLAS_CORETYPE=Haswell holds it to AVX2; run_gpt_bench.sh sets both.)
inline void set_isa(const std::string& name) {
  const SimdLevel level = name == "avx512" ? SimdLevel::avx512
                          : name == "avx2" ? SimdLevel::avx2
                          : name == "scalar"
                              ? SimdLevel::off
                              : throw Error(cat_str("--isa must be avx512, avx2 or scalar, got '", name, "'"));
  TZ_CHECK(level != SimdLevel::avx512 || cpu_has_avx512(), "--isa avx512: this CPU has no AVX-512 (F/DQ/BW/VL)");
  TZ_CHECK(level != SimdLevel::avx2 || cpu_has_avx2_fma(), "--isa avx2: this CPU has no AVX2 with FMA");
  set_simd_level(level);
}

// A benchmark program's command line: each --flag bound to a variable, every value checked
// before anything runs. An unknown flag, a missing value, a value that is not a number or
// below its least, or a word outside its choices ends the program with status 2 and a line
// that says what was expected, then the usage.
//
//   Args a;
//   bench::Flags flags("gpt_step", "--config small|large --threads N [--reps R]");
//   flags.word("--config", a.config, {"small", "large"}).whole("--threads", a.threads, 1)
//       .whole("--reps", a.reps, 1);
//   flags.parse(argc, argv);
class Flags {
 public:
  Flags(std::string program, std::string usage) : program_(std::move(program)), usage_(std::move(usage)) {}

  // --name WORD; one of `choices` unless they are empty.
  Flags& word(const char* name, std::string& v, std::vector<std::string> choices = {}) {
    return add(name, true, [name, &v, choices = std::move(choices)](const std::string& s) {
      if (!choices.empty() && std::find(choices.begin(), choices.end(), s) == choices.end()) {
        std::string all;
        for (const std::string& c : choices) all += (all.empty() ? "" : ", ") + c;
        throw Error(cat_str(name, " must be one of ", all, ", got '", s, "'"));
      }
      v = s;
    });
  }
  // --name N, a whole number of at least `least`.
  template <class Int>
  Flags& whole(const char* name, Int& v, int64_t least = std::numeric_limits<int64_t>::min()) {
    return add(name, true, [name, &v, least](const std::string& s) {
      const int64_t x = parse_whole(name, s);
      if (x < least) throw Error(cat_str(name, " must be at least ", least, ", got ", x));
      if (x > int64_t(std::numeric_limits<Int>::max())) throw Error(cat_str(name, " is too large: ", x));
      v = Int(x);
    });
  }
  // --name N,N,...: whole numbers of at least `least`, separated by commas ("" is none).
  Flags& list(const char* name, std::vector<int64_t>& v, int64_t least = 1) {
    return add(name, true, [name, &v, least](const std::string& s) {
      std::vector<int64_t> xs = s.empty() ? std::vector<int64_t>{} : parse_list(s, name);
      for (int64_t x : xs)
        if (x < least) throw Error(cat_str(name, " takes numbers of at least ", least, ", got ", x));
      v = std::move(xs);
    });
  }
  // --name X, a real number of at least `least`.
  Flags& real(const char* name, double& v, double least) {
    return add(name, true, [name, &v, least](const std::string& s) {
      char* end = nullptr;
      const double x = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0') throw Error(cat_str(name, " takes a number, got '", s, "'"));
      if (!(x >= least)) throw Error(cat_str(name, " must be at least ", least, ", got ", s));
      v = x;
    });
  }
  // --name alone: v = to.
  Flags& toggle(const char* name, bool& v, bool to = true) {
    return add(name, false, [&v, to](const std::string&) { v = to; });
  }
  // --isa avx512|avx2|scalar: the kernels' SIMD level (set_isa), set as it is read.
  Flags& isa() {
    return add("--isa", true, [](const std::string& s) { set_isa(s); });
  }
  // --name alone, accepted and without effect (a flag the scripts pass for what is the default).
  Flags& accept(const char* name) {
    return add(name, false, [](const std::string&) {});
  }

  void parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      const auto e = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& x) { return x.name == k; });
      if (e == entries_.end()) fail(cat_str("unknown argument '", k, "'"));
      if (e->takes_value && i + 1 >= argc) fail(cat_str("missing value after ", k));
      try {
        e->set(e->takes_value ? std::string(argv[++i]) : std::string());
      } catch (const Error& err) {
        fail(err.what());
      }
    }
  }
  [[noreturn]] void fail(const std::string& why) const {
    std::fprintf(stderr, "%s: %s\nusage: %s %s\n", program_.c_str(), why.c_str(), program_.c_str(), usage_.c_str());
    std::exit(2);
  }

 private:
  struct Entry {
    std::string name;
    bool takes_value;
    std::function<void(const std::string&)> set;
  };
  Flags& add(const char* name, bool takes_value, std::function<void(const std::string&)> set) {
    entries_.push_back({name, takes_value, std::move(set)});
    return *this;
  }
  std::string program_, usage_;
  std::vector<Entry> entries_;
};

}  // namespace tz::bench
