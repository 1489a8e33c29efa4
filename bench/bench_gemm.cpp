// bench_gemm: GFLOP/s of our own packed GEMM (gemm_own), OpenBLAS (gemm_blas) and the naive
// loop (gemm_ref, only where it finishes in about a second), f32, C = A B, row-major.
// Shapes: square 256..2048, and the GEMMs of GPT-style training, M = 2048 tokens with
// K, N in {256, 768, 1024}. Each timing is the median of several repetitions after a
// warm-up; 1 and 2 threads (tz::set_num_threads sets both our threads and OpenBLAS's).
// Ends with one JSON line of the ratios own / OpenBLAS.
//
//   bench_gemm            full table
//   bench_gemm --quick    fewer shapes and repetitions
//   bench_gemm --skinny   M 5..32 (prompt prefill, small batches): the shapes the dispatcher's
//                         OpenBLAS rule in core/kernels/gemm.cpp decides
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/kernels/gemm.h"
#include "core/parallel.h"
#include "core/random.h"

using namespace tz;

namespace {

struct Shape3 {
  int64_t M, N, K;
};

template <class F>
double median_seconds(F&& f, int reps) {
  f();  // warm-up: page faults, packing buffers, OpenMP thread start
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (!mode.empty() && mode != "--quick" && mode != "--skinny") {
    std::fprintf(stderr, "bench_gemm: unknown argument '%s' (expected --quick or --skinny)\n", mode.c_str());
    return 2;
  }
  const bool quick = mode == "--quick";
  std::vector<Shape3> shapes;
  if (mode == "--skinny") {
    for (int64_t M : {5, 8, 12, 16, 23, 32})
      for (int64_t NK : {256, 768}) {
        shapes.push_back({M, NK, NK});
        shapes.push_back({M, 4 * NK, NK});
      }
  } else {
    shapes = {{256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024}};
    if (!quick) shapes.push_back({2048, 2048, 2048});
    for (int64_t K : {256, 768, 1024})
      for (int64_t N : {256, 768, 1024})
        if (!quick || K == N) shapes.push_back({2048, N, K});
  }
  const int reps = quick ? 3 : mode == "--skinny" ? 51 : 7;
  const bool have_blas = kernels::gemm_blas_available();

  std::printf("f32 GEMM C[M,N] = A[M,K] B[K,N], GFLOP/s (median of %d), SIMD %s, OpenBLAS %s\n", reps,
              simd_level_name(simd_level()), have_blas ? "yes" : "no");
  std::printf("%-7s %5s %5s %5s | %8s %8s %8s | %6s\n", "threads", "M", "N", "K", "own", "openblas", "naive", "own/ob");
  std::string json = "{\"bench\":\"gemm\",\"ratios_own_over_openblas\":{";
  bool first = true;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const Shape3& s : shapes) {
      Generator gen(42);
      std::vector<float> A(size_t(s.M * s.K)), B(size_t(s.K * s.N)), C(size_t(s.M * s.N));
      for (auto& x : A) x = float(gen.uniform() - 0.5);
      for (auto& x : B) x = float(gen.uniform() - 0.5);
      kernels::GemmArgs<float> g{C.data(), s.N, A.data(), s.K, false, B.data(), s.N, false, s.M, s.N, s.K};
      const double flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
      const double own = flops / median_seconds([&] { kernels::gemm_own(g); }, reps) / 1e9;
      double ob = 0, naive = 0;
      if (have_blas) ob = flops / median_seconds([&] { kernels::gemm_blas(g); }, reps) / 1e9;
      // The naive loop runs at ~1-2 GFLOP/s (single thread): only up to ~0.5 GFLOP of work.
      if (flops <= 5e8) naive = flops / median_seconds([&] { kernels::gemm_ref(g); }, 1) / 1e9;
      const double ratio = ob > 0 ? own / ob : 0;
      std::printf("%-7d %5lld %5lld %5lld | %8.1f %8.1f %8s | %6.2f\n", threads, (long long)s.M, (long long)s.N,
                  (long long)s.K, own, ob, naive > 0 ? std::to_string(naive).substr(0, 5).c_str() : "-", ratio);
      std::fflush(stdout);
      char key[96];
      std::snprintf(key, sizeof key, "%s\"t%d_%lldx%lldx%lld\":%.3f", first ? "" : ",", threads, (long long)s.M,
                    (long long)s.N, (long long)s.K, ratio);
      json += key;
      first = false;
    }
  }
  json += "}}";
  std::printf("%s\n", json.c_str());
  return 0;
}
