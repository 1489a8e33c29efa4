// bench_alloc: what a GPT training step asks of the memory allocator, and what the caching
// allocator (core/allocator.h) saves.
//
// Model: models::GPT, dim 256, depth 4, heads 4, vocab 256, context 256; batch 8 x T 256;
// AdamW. One step = zero_grad, loss forward, backward, optimizer step.
// For each mode - caching off (every freed block goes back to the OS: the old behaviour) and
// caching on - we print per step: Storage allocations and their bytes, blocks obtained from
// the OS and their bytes, the peak of live bytes, and the step time. The modes alternate
// (rounds of `steps` steps each) and the times reported are medians, because the machine
// is shared and timings are noisy.
// Usage: bench_alloc [--rounds N] [--steps N] [--threads N] [--batch B]
// (glibc serves blocks below its mmap threshold, which adapts up to 32 MB, from its own heap;
// larger blocks - e.g. the MLP activations at --batch 32 - are mmap'ed fresh every time
// unless cached.)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/allocator.h"
#include "tensorzoo.h"

using namespace tz;

namespace {
long minor_faults() {  // page faults served without I/O: fresh pages from the OS
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  int rounds = 3, steps = 3, threads = 0;
  int64_t B = 8, T = 256;
  bench::Flags flags("bench_alloc", "[--rounds R] [--steps S] [--threads N] [--batch B]");
  flags.whole("--rounds", rounds, 1).whole("--steps", steps, 1).whole("--threads", threads, 1).whole("--batch", B, 1);
  flags.parse(argc, argv);
  if (threads > 0) set_num_threads(threads);
  models::GPTConfig cfg;
  cfg.vocab = 256, cfg.dim = 256, cfg.depth = 4, cfg.heads = 4, cfg.context = 256;
  Generator gen(1);
  models::GPT model(cfg, gen);
  optim::AdamW opt(model.named_parameters(), optim::AdamWOptions{.lr = 1e-3});
  Tensor ids = randint(0, cfg.vocab, {B, T}, gen), targets = randint(0, cfg.vocab, {B, T}, gen);

  auto step = [&] {
    opt.zero_grad();
    Tensor loss = model.loss(ids, targets);
    loss.backward();
    opt.step();
  };
  std::printf("bench_alloc: GPT d%lld x%lld, heads %lld, batch %lld x T %lld, %d threads\n", (long long)cfg.dim,
              (long long)cfg.depth, (long long)cfg.heads, (long long)B, (long long)T, get_num_threads());
  step();  // first step: parameters' gradients and optimizer state are allocated here

  struct PerStep {
    std::vector<double> ms;
    double requests = 0, request_mb = 0, os_allocs = 0, os_mb = 0, peak_mb = 0, faults = 0;
  } mode[2];
  const double MB = 1.0 / (1 << 20);
  for (int r = 0; r < rounds; ++r)
    for (int caching = 0; caching < 2; ++caching) {
      set_allocator_caching(caching == 1);
      step();  // warm the cache (or empty it) for this mode
      PerStep& m = mode[caching];
      for (int s = 0; s < steps; ++s) {
        reset_allocator_peak();
        AllocatorStats a = allocator_stats();
        long f0 = minor_faults();
        auto t0 = std::chrono::steady_clock::now();
        step();
        auto t1 = std::chrono::steady_clock::now();
        AllocatorStats b = allocator_stats();
        m.faults = double(minor_faults() - f0);
        m.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        m.requests = double(b.requests - a.requests);
        m.request_mb = double(b.request_bytes - a.request_bytes) * MB;
        m.os_allocs = double(b.os_allocs - a.os_allocs);
        m.os_mb = double(b.os_bytes - a.os_bytes) * MB;
        m.peak_mb = double(b.peak_bytes) * MB;
      }
    }
  const char* names[2] = {"caching off", "caching on"};
  for (int c = 0; c < 2; ++c)
    std::printf(
        "%-12s per step: %6.0f allocations (%7.1f MB), %6.0f from the OS (%7.1f MB), "
        "peak live %6.1f MB, %6.0f page faults, step %7.1f ms (median of %zu)\n",
        names[c], mode[c].requests, mode[c].request_mb, mode[c].os_allocs, mode[c].os_mb, mode[c].peak_mb,
        mode[c].faults, median(mode[c].ms), mode[c].ms.size());
  std::printf(
      "{\"off_ms\": %.2f, \"on_ms\": %.2f, \"speedup\": %.3f, \"allocs_per_step\": %.0f, "
      "\"os_allocs_off\": %.0f, \"os_allocs_on\": %.0f, \"peak_mb\": %.1f}\n",
      median(mode[0].ms), median(mode[1].ms), median(mode[0].ms) / median(mode[1].ms), mode[1].requests,
      mode[0].os_allocs, mode[1].os_allocs, mode[1].peak_mb);
  return 0;
}
