// sparse_attention: milliseconds and peak memory of one forward + backward of causal
// attention through the autograd op (f32, B 1, H 4, D 64) with a sliding window of 256 keys
// (WindowMask) at T = 1k, 4k, 16k; beside it BigBird's block layout (b 64, one window block
// each side, one global block, 2 random blocks; layout mask term built once per shape, one
// pattern call per 32 x 32 tile thanks to its granule, the build timed apart) and full
// causal attention where it stays affordable (T <= 4k). Memory is the
// allocator's peak above what was live before the call (the library's tensors; the kernel's
// per-thread tile buffers are a few KB). Time is wall time, the median of 3 runs after a
// warm-up, on the threads the library uses.
//
//   sparse_attention            T 1k, 4k, 16k
//   sparse_attention --quick    T 1k, 4k
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "core/allocator.h"
#include "core/kernels/attention_layout.h"
#include "core/random.h"

using namespace tz;

namespace {
constexpr int64_t kH = 4, kD = 64;

struct Result {
  double ms, mb;
};

Result measure(int64_t T, const std::shared_ptr<const kernels::MaskTerm>& term) {
  Generator gen(1);
  Tensor q = randn({1, kH, T, kD}, gen).requires_grad_(), k = randn({1, kH, T, kD}, gen).requires_grad_(),
         v = randn({1, kH, T, kD}, gen).requires_grad_(), g = randn({1, kH, T, kD}, gen);
  std::shared_ptr<kernels::AttentionMask> mask;
  if (term) {
    mask = std::make_shared<kernels::AttentionMask>();
    mask->terms = {term};
  }
  const AttentionSpec spec{.causal = true, .mask = mask};
  auto once = [&] {
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
    sum(attention(q, k, v, spec) * g).backward();
  };
  once();  // warm-up
  std::vector<double> ms;
  double peak = 0;
  for (int r = 0; r < 3; ++r) {
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
    const size_t base = allocator_stats().live_bytes;
    reset_allocator_peak();
    const auto t0 = std::chrono::steady_clock::now();
    sum(attention(q, k, v, spec) * g).backward();
    ms.push_back(1e3 * bench::seconds_since(t0));
    peak = std::max(peak, double(allocator_stats().peak_bytes - base) / (1 << 20));
  }
  return {bench::median(ms), peak};
}
}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::vector<int64_t> Ts{1024, 4096};
  if (!quick) Ts.push_back(16384);
  std::printf("causal attention forward + backward, f32, B 1, H %lld, D %lld\n", (long long)kH, (long long)kD);
  std::printf("%-28s %7s %10s %10s %12s\n", "form", "T", "ms", "peak MB", "ms per 1k T");
  auto row = [](const char* what, int64_t T, Result r) {
    std::printf("%-28s %7lld %10.1f %10.2f %12.2f\n", what, (long long)T, r.ms, r.mb, r.ms / (double(T) / 1024));
  };
  for (int64_t T : Ts) row("sliding window w 256", T, measure(T, std::make_shared<kernels::WindowMask>(256)));
  for (int64_t T : Ts) {
    kernels::LayoutCache cache([](int64_t H, int64_t S) { return kernels::bigbird_pattern(64, 1, 1, 2, 0, H, S); });
    const auto t0 = std::chrono::steady_clock::now();
    auto term = cache.get(kH, T);
    const double build = 1e3 * bench::seconds_since(t0);
    row("bigbird b 64 (layout cached)", T, measure(T, term));
    std::printf("%-28s %7lld %10.1f\n", "  bigbird layout build", (long long)T, build);
  }
  for (int64_t T : Ts)
    if (T <= 4096) row("full causal", T, measure(T, nullptr));
  return 0;
}
