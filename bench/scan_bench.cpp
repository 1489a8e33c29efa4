// scan_bench: Mamba's selective scan, forward + backward in f32, through the autograd op
// (what training runs), at one size per process so that the peak RSS is this size's.
//
//   scan_bench --T 1024 [--B 8 --D 512 --N 16 --threads 2 --reps 3 --chunk 64]
//   scan_bench --decode 4000 [--threads 1]   a Mamba LM (dim 256, 4 blocks, f32) decoding one
//                                            token at a time: ms per token around positions 100
//                                            and 4000 (flat: the state does not grow)
// prints one JSON line: {"framework":"tensorzoo","T":...,"threads":...,"ms":median fwd+bwd,
// "ms_fwd":..., "peak_rss_mb":...}. The inputs are what a Mamba layer feeds the scan:
// u and z ~ N(0, 1), delta = softplus of N(-4, 1) (around the dt init range), A = -(n + 1)
// (S4D-real), B and C ~ N(0, 1), D = 1.
#include <sys/resource.h>

#include <cstdio>
#include <string>

#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/random.h"
#include "models/zoo.h"

using namespace tz;

namespace {
// Per-token decode time of a Mamba LM at positions [p - 10, p + 10) for p in {100, positions}.
int decode(int64_t positions, int threads) {
  set_num_threads(threads);
  Generator gen(0);
  auto lm = zoo::make_lm(R"({"vocab": 256, "dim": 256, "context": 8192, "mixer": "mamba", "norm": "rmsnorm",
                             "layout": "ssss"})",
                         gen);
  lm->eval();
  NoGradGuard no_grad;
  auto state = lm->make_state(1, positions + 16);
  Tensor ids = randint(0, 256, {1, positions + 10}, gen);
  std::vector<double> early, late;
  for (int64_t t = 0; t < positions + 10; ++t) {
    auto t0 = std::chrono::steady_clock::now();
    lm->step(ids.narrow(1, t, 1), state);
    const double ms = bench::seconds_since(t0) * 1e3;
    if (t >= 90 && t < 110) early.push_back(ms);
    if (t >= positions - 10) late.push_back(ms);
  }
  std::printf(
      "{\"framework\":\"tensorzoo\",\"mode\":\"decode\",\"threads\":%d,\"ms_per_token_at_100\":%.3f,"
      "\"ms_per_token_at_%lld\":%.3f}\n",
      threads, bench::median(early), (long long)positions, bench::median(late));
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  int64_t B = 8, T = 1024, D = 512, N = 16, chunk = 64, decode_positions = 0;
  int threads = 1, reps = 3;
  bench::Flags flags("scan_bench", "[--B B] [--T T] [--D D] [--N N] [--chunk C] [--threads N] [--reps R] [--decode P]");
  flags.whole("--B", B, 1)
      .whole("--T", T, 1)
      .whole("--D", D, 1)
      .whole("--N", N, 1)
      .whole("--chunk", chunk, 1)
      .whole("--threads", threads, 1)
      .whole("--reps", reps, 1)
      .whole("--decode", decode_positions, 110);  // positions past the early window (90..110)
  flags.parse(argc, argv);
  if (decode_positions > 8192 - 16) flags.fail("--decode: at most 8176 positions (the model's context is 8192)");
  if (decode_positions > 0) return decode(decode_positions, threads);
  set_num_threads(threads);
  Generator gen(0);
  Tensor u = randn({B, T, D}, gen).requires_grad_();
  Tensor delta = softplus(randn({B, T, D}, gen) - 4.0).detach().requires_grad_();
  std::vector<float> a(size_t(D * N));
  for (int64_t d = 0; d < D; ++d)
    for (int64_t n = 0; n < N; ++n) a[size_t(d * N + n)] = -float(n + 1);
  Tensor A = from_vector(a, {D, N}).requires_grad_();
  Tensor Bm = randn({B, T, N}, gen).requires_grad_(), Cm = randn({B, T, N}, gen).requires_grad_();
  Tensor Dskip = ones({D}).requires_grad_(), z = randn({B, T, D}, gen).requires_grad_();
  Tensor gy = randn({B, T, D}, gen);
  std::vector<double> total, fwd;
  for (int r = 0; r < reps + 1; ++r) {  // the first run warms up
    auto t0 = std::chrono::steady_clock::now();
    SelectiveScanResult out = selective_scan(u, delta, A, Bm, Cm, Dskip, z, Tensor(), {.chunk = chunk});
    const double tf = bench::seconds_since(t0);
    Tensor loss = sum(out.y * gy);
    loss.backward();
    const double tt = bench::seconds_since(t0);
    if (r > 0) total.push_back(tt * 1e3), fwd.push_back(tf * 1e3);
    for (Tensor* p : {&u, &delta, &A, &Bm, &Cm, &Dskip, &z}) p->zero_grad();
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "{\"framework\":\"tensorzoo\",\"B\":%lld,\"T\":%lld,\"D\":%lld,\"N\":%lld,\"threads\":%d,\"ms\":%.2f,"
      "\"ms_fwd\":%.2f,\"peak_rss_mb\":%.1f}\n",
      (long long)B, (long long)T, (long long)D, (long long)N, threads, bench::median(total), bench::median(fwd),
      ru.ru_maxrss / 1024.0);
}
