#include "core/parallel.h"

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#ifdef TZ_HAVE_OPENMP
#include <omp.h>
#endif

#ifdef TZ_HAVE_OPENBLAS
extern "C" void openblas_set_num_threads(int);
#endif

namespace tz {

namespace {
int initial_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
#ifdef TZ_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Per calling thread, as OpenMP's own thread count is: an application that trains or
// generates in several threads sets each one's count without a race.
int& thread_count() {
  static thread_local int n = initial_threads();
  return n;
}

bool detect_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool detect_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the zmm state (XCR0).
  return detect_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

SimdLevel clamp_level(SimdLevel want) {
  if (want == SimdLevel::avx512 && !detect_avx512()) want = SimdLevel::avx2;
  if (want == SimdLevel::avx2 && !detect_avx2_fma()) want = SimdLevel::off;
  return want;
}

// The best level, capped by TZ_SIMD (unknown values are ignored: the best level).
SimdLevel default_level() {
  SimdLevel want = SimdLevel::avx512;
  if (const char* env = std::getenv("TZ_SIMD")) {
    const std::string v = env;
    if (v == "off" || v == "scalar" || v == "0")
      want = SimdLevel::off;
    else if (v == "avx2")
      want = SimdLevel::avx2;
  }
  return clamp_level(want);
}

SimdLevel g_simd = default_level();
}  // namespace

void set_num_threads(int n) {
  n = std::max(n, 1);
  thread_count() = n;
#ifdef TZ_HAVE_OPENMP
  omp_set_num_threads(n);
#endif
#ifdef TZ_HAVE_OPENBLAS
  openblas_set_num_threads(n);
#endif
}

int get_num_threads() { return thread_count(); }

bool in_parallel_region() {
#ifdef TZ_HAVE_OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}

namespace {
bool read_wait_policy_passive() {
  const char* e = std::getenv("OMP_WAIT_POLICY");
  return e && strcasecmp(e, "passive") == 0;  // OpenMP reads the value case-insensitively
}
std::atomic<bool> g_passive_sizing{read_wait_policy_passive()};
}  // namespace

bool passive_wait_sizing() { return g_passive_sizing.load(std::memory_order_relaxed); }
void set_passive_wait_sizing(bool on) { g_passive_sizing.store(on, std::memory_order_relaxed); }

int64_t parallel_grain() {
  // Measured, small GPT decoding on 2 threads with OMP_WAIT_POLICY=PASSIVE: 600-1850 tok/s
  // with the 32k grain (slower than 1 thread), 3350-3590 with 512k (1 thread: 2900-3600).
  return passive_wait_sizing() ? int64_t(1) << 19 : int64_t(1) << 15;
}

void parallel_for(int64_t n, int64_t cost_per_item, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t kGrain = parallel_grain();
  int threads = get_num_threads();
  int64_t work = n * std::max<int64_t>(cost_per_item, 1);
  if (threads <= 1 || work < kGrain || n < 2 || in_parallel_region()) {
    fn(0, n);
    return;
  }
#ifdef TZ_HAVE_OPENMP
  int64_t chunks = std::min<int64_t>({int64_t(threads), n, std::max<int64_t>(work / kGrain, 1)});
#pragma omp parallel for num_threads(int(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) fn(b, e);
  }
#else
  fn(0, n);
#endif
}

bool cpu_has_avx2_fma() {
  static bool has = detect_avx2_fma();
  return has;
}
bool cpu_has_avx512() {
  static bool has = detect_avx512();
  return has;
}
void set_simd_level(SimdLevel level) { g_simd = clamp_level(level); }
SimdLevel simd_level() { return g_simd; }
const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512:
      return "avx512";
    case SimdLevel::avx2:
      return "avx2";
    default:
      return "off";
  }
}
void set_simd_enabled(bool on) { g_simd = on ? default_level() : SimdLevel::off; }
bool simd_enabled() { return g_simd != SimdLevel::off; }

}  // namespace tz
