// long_conv_step: milliseconds of one forward + backward of the causal long convolution
// (autograd/ops_long_conv.h; kernels core/kernels/long_conv.h), f32, B 8, C 256: the FFT path
// and the direct O(L^2) sums, the same work bench/torch_long_conv.py measures in PyTorch with
// torch.fft (as safari's fftconv). Wall time, the least of --reps after a warm-up. One JSON
// line per (path, L):
//   {"impl": "tensorzoo-fft"|"tensorzoo-direct", "L": .., "threads": .., "ms": .., "fwd_ms": ..}
//
//   long_conv_step --threads N [--L 1024,4096,16384] [--reps R] [--direct-max 4096]
//
// Inputs: u ~ N(0, 1) [B, C, L], k ~ N(0, 1/L) [C, L], D ~ N(0, 1) [C], dy ~ N(0, 1).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "bench/bench_util.h"
#include "core/parallel.h"
#include "core/random.h"

using namespace tz;

int main(int argc, char** argv) {
  int threads = 1, reps = 3;
  int64_t direct_max = 4096;
  std::vector<int64_t> Ls{1024, 4096, 16384};
  bench::Flags flags("long_conv_step", "--threads N [--L L,L,...] [--reps R] [--direct-max L]");
  flags.whole("--threads", threads, 1).whole("--reps", reps, 1).list("--L", Ls).whole("--direct-max", direct_max, 0);
  flags.parse(argc, argv);
  set_num_threads(threads);
  const int64_t B = 8, C = 256;
  for (int64_t L : Ls) {
    Generator gen(1);
    Tensor u = randn({B, C, L}, gen).requires_grad_();
    Tensor k = (randn({C, L}, gen) * (1.0 / std::sqrt(double(L)))).detach().requires_grad_();
    Tensor D = randn({C}, gen).requires_grad_();
    Tensor dy = randn({B, C, L}, gen);
    for (bool direct : {false, true}) {
      if (direct && L > direct_max) continue;
      std::vector<double> total, fwd;
      for (int r = 0; r <= reps; ++r) {  // r = 0: warm-up
        for (Tensor* t : {&u, &k, &D}) t->zero_grad();
        auto t0 = std::chrono::steady_clock::now();
        Tensor y = long_conv(u, k, D, {.reference = direct});
        const double f = bench::seconds_since(t0);
        y.backward(dy);
        const double all = bench::seconds_since(t0);
        if (r > 0) total.push_back(all * 1e3), fwd.push_back(f * 1e3);
      }
      std::printf("{\"impl\": \"tensorzoo-%s\", \"L\": %lld, \"threads\": %d, \"ms\": %.3f, \"fwd_ms\": %.3f}\n",
                  direct ? "direct" : "fft", (long long)L, threads, *std::min_element(total.begin(), total.end()),
                  *std::min_element(fwd.begin(), fwd.end()));
      std::fflush(stdout);
    }
  }
  return 0;
}
