// fma_peak: the machine's measured f32 FMA throughput in GFLOP/s, on 1 core and on every
// core, with AVX2 (8 lanes) and, when the CPU has it, AVX-512 (16 lanes).
//
// The loop keeps 12 independent accumulators (FMA latency 4 cycles x 2-3 FMA pipes needs
// at least 8-12 chains in flight) and runs only FMAs on registers: no loads, no stores. One
// FMA of W lanes counts 2 W FLOPs. Each figure is the best of several timed runs (a peak,
// not a typical value; the machine is shared). tensorzoo's kernels are AVX2+FMA, so the
// AVX2 figure is the "peak" the GPT benchmark divides by; the AVX-512 figure is printed
// for what the hardware could do beyond that.
//
//   fma_peak [--threads N] [--json]     one JSON object; N defaults to every core
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace {

constexpr long kIters = 20'000'000;  // x 12 FMAs per iteration

__attribute__((target("avx2,fma"), noinline)) float loop_avx2(long iters, float seed) {
  __m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_set1_ps(seed + 1), a2 = _mm256_set1_ps(seed + 2),
         a3 = _mm256_set1_ps(seed + 3), a4 = _mm256_set1_ps(seed + 4), a5 = _mm256_set1_ps(seed + 5),
         a6 = _mm256_set1_ps(seed + 6), a7 = _mm256_set1_ps(seed + 7), a8 = _mm256_set1_ps(seed + 8),
         a9 = _mm256_set1_ps(seed + 9), a10 = _mm256_set1_ps(seed + 10), a11 = _mm256_set1_ps(seed + 11);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i) {
    a0 = _mm256_fmadd_ps(a0, m, c);
    a1 = _mm256_fmadd_ps(a1, m, c);
    a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c);
    a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c);
    a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c);
    a10 = _mm256_fmadd_ps(a10, m, c);
    a11 = _mm256_fmadd_ps(a11, m, c);
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3));  // keep the chains alive
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

// GCC 12 inlines _mm512_reduce_add_ps's 256-bit extract, whose pass-through operand the header
// builds from _mm256_undefined_pd() (a vector initialised from itself), and -Wuninitialized
// reports that header line as '__Y' used uninitialized: a false positive, silenced for this
// function only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
__attribute__((target("avx512f"), noinline)) float loop_avx512(long iters, float seed) {
  __m512 a0 = _mm512_set1_ps(seed), a1 = _mm512_set1_ps(seed + 1), a2 = _mm512_set1_ps(seed + 2),
         a3 = _mm512_set1_ps(seed + 3), a4 = _mm512_set1_ps(seed + 4), a5 = _mm512_set1_ps(seed + 5),
         a6 = _mm512_set1_ps(seed + 6), a7 = _mm512_set1_ps(seed + 7), a8 = _mm512_set1_ps(seed + 8),
         a9 = _mm512_set1_ps(seed + 9), a10 = _mm512_set1_ps(seed + 10), a11 = _mm512_set1_ps(seed + 11);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i) {
    a0 = _mm512_fmadd_ps(a0, m, c);
    a1 = _mm512_fmadd_ps(a1, m, c);
    a2 = _mm512_fmadd_ps(a2, m, c);
    a3 = _mm512_fmadd_ps(a3, m, c);
    a4 = _mm512_fmadd_ps(a4, m, c);
    a5 = _mm512_fmadd_ps(a5, m, c);
    a6 = _mm512_fmadd_ps(a6, m, c);
    a7 = _mm512_fmadd_ps(a7, m, c);
    a8 = _mm512_fmadd_ps(a8, m, c);
    a9 = _mm512_fmadd_ps(a9, m, c);
    a10 = _mm512_fmadd_ps(a10, m, c);
    a11 = _mm512_fmadd_ps(a11, m, c);
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3));
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  return _mm512_reduce_add_ps(s);
}
#pragma GCC diagnostic pop

// GFLOP/s of `threads` copies of the loop running at once (best of `tries`).
template <class F>
double measure(F loop, int lanes, int threads, int tries) {
  double best = 0;
  std::atomic<float> sink{0};
  for (int t = 0; t < tries; ++t) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back([&, i] { sink = sink + loop(kIters, 1.0f + float(i)); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double flops = double(threads) * double(kIters) * 12.0 * 2.0 * double(lanes);
    best = std::max(best, flops / s / 1e9);
  }
  if (sink.load() == 12345.0f) std::printf(" ");  // keep the result observable
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  tz::bench::Flags flags("fma_peak", "[--threads N] [--json]");
  flags.whole("--threads", cores, 1).accept("--json");  // the output is always one JSON object
  flags.parse(argc, argv);
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const int tries = 15;  // short runs, many tries: one of them finds the core free
  double a2_1 = 0, a2_n = 0, a5_1 = 0, a5_n = 0;
  if (avx2) {
    a2_1 = measure(loop_avx2, 8, 1, tries);
    a2_n = measure(loop_avx2, 8, cores, tries);
  }
  if (avx512) {
    a5_1 = measure(loop_avx512, 16, 1, tries);
    a5_n = measure(loop_avx512, 16, cores, tries);
  }
  std::printf(
      "{\"bench\":\"fma_peak\",\"cores\":%d,\"avx2_1core_gflops\":%.1f,\"avx2_%dcore_gflops\":%.1f,"
      "\"avx512_1core_gflops\":%.1f,\"avx512_%dcore_gflops\":%.1f,\"accumulators\":12,"
      "\"note\":\"f32, 2 FLOPs per FMA lane, best of %d\"}\n",
      cores, a2_1, cores, a2_n, a5_1, cores, a5_n, tries);
  return 0;
}
