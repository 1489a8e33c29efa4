// bench_attention: milliseconds of the fused attention kernels (core/kernels/attention.h), f32,
// one thread, at the current SIMD level: forward and backward of plain causal attention
// (B 8, H 4, T 256 and 1024, D 64), non-causal, and one decoding step (T 1 over S 272 cached
// keys); then at T 1024 what masks, a relative bias and grouped key/value heads cost: a
// sliding window of 128 keys, key padding, an ALiBi-style bias table, multi-query (G 1); last
// the large GPT's shape with contiguous heads and with the rows of its qkv projection.
// Each timing is the thread CPU time, minimum of several repetitions after a warm-up (both
// to be the least disturbed by other work on a shared machine).
//
//   bench_attention            all shapes
//   bench_attention --quick    fewer repetitions
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/kernels/attention.h"
#include "core/parallel.h"
#include "core/random.h"

using namespace tz;

namespace {

// CPU time of the calling thread (the kernels run on it alone: one thread), in ms. Unlike
// wall time it does not count the time other processes hold the core.
double thread_ms() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

template <class F>
double min_ms(F&& f, int reps) {
  f();  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = thread_ms();
    f();
    best = std::min(best, thread_ms() - t0);
  }
  return best;
}

struct Buffers {
  std::vector<float> q, k, v, o, lse, dout, dq, dk, dv;
};

// Contiguous [B, H, rows, D] operands.
kernels::AttnRows<float> rows(std::vector<float>& x, int64_t H, int64_t N, int64_t D) {
  return {x.data(), H * N * D, N * D, D};
}

struct Case {
  const char* name;
  kernels::AttnSizes n;
  bool bias = false;  // an ALiBi-style table, -slope_h |d|
  // The layout nn's attention hands over: q, k, v rows of one [B, T, 3, H, D] projection,
  // o and dout [B, T, H, D] (rows 3 H D and H D floats apart, not D); the gradients are
  // [B, H, N, D] as tz::attention allocates them.
  bool projection_layout = false;
};

void run(const Case& s, int reps) {
  const kernels::AttnSizes& n = s.n;
  const int64_t B = n.B, H = n.H, G = n.G > 0 ? n.G : n.H, T = n.T, S = n.S, D = n.D;
  Buffers b;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> nd;
  auto fill = [&](std::vector<float>& x, int64_t count, bool random) {
    x.assign(size_t(count), 0.f);
    if (random)
      for (auto& e : x) e = nd(rng);
  };
  fill(b.q, B * H * T * D, true);
  fill(b.k, B * G * S * D, true);
  fill(b.v, B * G * S * D, true);
  fill(b.dout, B * H * T * D, true);
  fill(b.o, B * H * T * D, false);
  fill(b.lse, B * H * T, false);
  fill(b.dq, B * H * T * D, false);
  fill(b.dk, B * G * S * D, false);
  fill(b.dv, B * G * S * D, false);
  const int64_t R = T + S - 1;
  std::vector<float> table(size_t(H * R)), table_grad(table.size());
  for (int64_t h = 0; h < H; ++h)
    for (int64_t x = 0; x < R; ++x)
      table[size_t(h * R + x)] = -std::ldexp(1.0f, -int(h + 1)) * float(std::abs(x - (S - 1 - n.q_offset)));
  kernels::RelativeBias<float> bias{
      .table = table.data(), .sh = R, .R = R, .zero = S - 1 - n.q_offset, .grad = table_grad.data()};
  const kernels::RelativeBias<float>* bp = s.bias ? &bias : nullptr;
  std::vector<float> qkv;
  if (s.projection_layout) fill(qkv, B * T * 3 * H * D, true);
  // Heads of x: contiguous [B, H, N, D], or (projection layout) rows `part` of [B, N, parts, H, D].
  auto heads = [&](std::vector<float>& x, int64_t Hx, int64_t N, int64_t part, int64_t parts) {
    if (!s.projection_layout) return rows(x, Hx, N, D);
    float* p = (parts == 3 ? qkv.data() : x.data()) + part * Hx * D;
    return kernels::AttnRows<float>{p, N * parts * Hx * D, D, parts * Hx * D};
  };
  auto in = [&](std::vector<float>& x, int64_t Hx, int64_t N, int64_t part, int64_t parts) {
    const kernels::AttnRows<float> r = heads(x, Hx, N, part, parts);
    return kernels::AttnRows<const float>{r.p, r.sb, r.sh, r.st};
  };
  auto fwd = [&] {
    kernels::attention_forward<float>(heads(b.o, H, T, 0, 1), b.lse.data(), in(b.q, H, T, 0, 3), in(b.k, G, S, 1, 3),
                                      in(b.v, G, S, 2, 3), n, bp);
  };
  auto bwd = [&] {
    kernels::attention_backward<float>(rows(b.dq, H, T, D), rows(b.dk, G, S, D), rows(b.dv, G, S, D),
                                       in(b.o, H, T, 0, 1), b.lse.data(), in(b.dout, H, T, 0, 1), in(b.q, H, T, 0, 3),
                                       in(b.k, G, S, 1, 3), in(b.v, G, S, 2, 3), n, bp);
  };
  // The bits of one forward and one backward from zero gradients (FNV-1a of o, lse, dq, dk,
  // dv): equal hashes across builds show a change left the results bit for bit identical.
  fwd();
  bwd();
  uint64_t hash = 1469598103934665603ull;
  for (auto* x : {&b.o, &b.lse, &b.dq, &b.dk, &b.dv})
    for (float e : *x) {
      uint32_t u;
      std::memcpy(&u, &e, 4);
      hash = (hash ^ u) * 1099511628211ull;
    }
  const double tf = min_ms(fwd, reps);
  const double tb = min_ms(bwd, reps);
  std::printf("%-34s %10.4f %10.4f   %016llx\n", s.name, tf, tb, (unsigned long long)hash);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bench::Flags flags("bench_attention", "[--quick]");
  flags.toggle("--quick", quick);  // fewer repetitions
  flags.parse(argc, argv);
  const int reps = quick ? 5 : 15;
  set_num_threads(1);
  std::printf("fused attention f32, 1 thread, SIMD %s, thread CPU ms, min of %d runs\n", simd_level_name(simd_level()),
              reps);
  std::printf("%-34s %10s %10s   %s\n", "shape", "forward", "backward", "bits of the results");
  const double sc = 1.0 / std::sqrt(64.0);
  std::vector<Case> shapes = {
      {"causal B8 H4 T256 D64", {.B = 8, .H = 4, .T = 256, .S = 256, .D = 64, .causal = true, .scale = sc}},
      {"causal B2 H4 T1024 D64", {.B = 2, .H = 4, .T = 1024, .S = 1024, .D = 64, .causal = true, .scale = sc}},
      {"full B8 H4 T256 D64", {.B = 8, .H = 4, .T = 256, .S = 256, .D = 64, .causal = false, .scale = sc}},
      {"decode B8 H4 T1 S272 D64",
       {.B = 8, .H = 4, .T = 1, .S = 272, .D = 64, .q_offset = 271, .causal = true, .scale = sc}},
  };
  // Masks, bias and groups at T 1024 (compare with "causal B2 H4 T1024 D64").
  kernels::AttentionMask window{.terms = {std::make_shared<kernels::WindowMask>(128)}};
  std::vector<int64_t> keep(2 * 1024, 1);
  for (int64_t j = 900; j < 1024; ++j) keep[size_t(j)] = 0;  // batch row 0 ends in 124 padding keys
  kernels::AttentionMask padding{.terms = {std::make_shared<kernels::KeyPaddingMask>(keep.data(), 2, 1024)}};
  const kernels::AttnSizes t1024{.B = 2, .H = 4, .T = 1024, .S = 1024, .D = 64, .causal = true, .scale = sc};
  auto with = [&](kernels::AttnSizes n, const kernels::AttentionMask* mask, int64_t G) {
    n.mask = mask;
    n.G = G;
    return n;
  };
  shapes.push_back({"causal T1024 + window 128", with(t1024, &window, 0)});
  shapes.push_back({"causal T1024 + key padding", with(t1024, &padding, 0)});
  shapes.push_back({"causal T1024 + ALiBi bias table", t1024, true});
  shapes.push_back({"causal T1024, G 1 (multi-query)", with(t1024, nullptr, 1)});
  // The large GPT's attention (H 8, T 512) in the layout its projection leaves.
  shapes.push_back({"causal B4 H8 T512 D64, contiguous",
                    {.B = 4, .H = 8, .T = 512, .S = 512, .D = 64, .causal = true, .scale = sc}});
  shapes.push_back({"causal B4 H8 T512 D64, qkv rows",
                    {.B = 4, .H = 8, .T = 512, .S = 512, .D = 64, .causal = true, .scale = sc},
                    false,
                    true});
  for (const Case& s : shapes) run(s, reps);
  return 0;
}
