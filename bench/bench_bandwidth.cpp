// bench_bandwidth: how close memory-bound ops come to the machine's memory bandwidth.
//
// The peer, measured in the same run: a STREAM-like triad a[i] = b[i] + s * c[i] over
// 16M f32 (12 bytes per element moved: read b, c; write a). Then each op's GB/s, counting the
// bytes it must read and write (add/mul: 12 B/elem, exp/gelu/softmax/layer_norm: 8 B/elem),
// at 1 and 2 threads, and its fraction of the triad at the same thread count.
// Timing: 2 warm-up calls, then the median of 9. Ops return fresh tensors (the functional
// API), so by default glibc is told to keep big freed blocks (mallopt) instead of returning
// them to the OS: otherwise every call pays page faults on 64 MB of fresh memory, which a
// caching allocator (as in PyTorch) avoids. Pass --fresh-pages to measure without it.
// Last line: one JSON object with every number.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "tensorzoo.h"

using namespace tz;

namespace {
double median_seconds(const std::function<void()>& fn, int warmup = 2, int reps = 9) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Row {
  std::string op;
  int threads;
  double gbs, frac;
};
}  // namespace

int main(int argc, char** argv) {
  bool fresh_pages = false;
  bench::Flags flags("bench_bandwidth", "[--fresh-pages]");
  flags.toggle("--fresh-pages", fresh_pages);
  flags.parse(argc, argv);
  if (!fresh_pages) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);  // big blocks from the heap, reused after free
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  const int64_t N = int64_t(1) << 24;  // 16M
  Generator gen(1);
  Tensor b = randn({N}, gen), c = randn({N}, gen), a = empty({N});
  Tensor x2 = randn({16384, 1024}, gen), w = ones({1024}), bias = zeros({1024});
  NoGradGuard no_grad;

  std::vector<Row> rows;
  std::printf("bench_bandwidth: f32, %lld elements, SIMD %s, allocator %s\n", (long long)N,
              simd_enabled() ? "AVX2+FMA" : "off", fresh_pages ? "fresh pages" : "heap reuse (mallopt)");
  std::printf("%-12s %8s %10s %12s\n", "op", "threads", "GB/s", "of triad");
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    float* pa = a.data<float>();
    const float *pb = b.data<float>(), *pc = c.data<float>();
    const float s = 3.0f;
    double t_triad = median_seconds([&] {
      parallel_for(N, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) pa[i] = pb[i] + s * pc[i];
      });
    });
    double triad = 12.0 * double(N) / t_triad / 1e9;
    rows.push_back({"triad", threads, triad, 1.0});
    struct Op {
      const char* name;
      double bytes_per_elem;
      std::function<Tensor()> run;
    };
    std::vector<Op> ops = {
        {"add", 12, [&] { return tz::add(b, c); }},      {"mul", 12, [&] { return tz::mul(b, c); }},
        {"exp", 8, [&] { return tz::exp(b); }},          {"gelu", 8, [&] { return tz::gelu(b); }},
        {"softmax", 8, [&] { return tz::softmax(x2); }}, {"layer_norm", 8, [&] { return tz::layer_norm(x2, w, bias); }},
    };
    for (auto& op : ops) {
      double t = median_seconds([&] { op.run(); });
      double gbs = op.bytes_per_elem * double(N) / t / 1e9;
      rows.push_back({op.name, threads, gbs, gbs / triad});
    }
  }
  for (auto& r : rows) std::printf("%-12s %8d %10.2f %12.2f\n", r.op.c_str(), r.threads, r.gbs, r.frac);
  std::string json = "{\"bench\":\"bandwidth\",\"elements\":" + std::to_string(N) + ",\"allocator\":\"" +
                     (fresh_pages ? "fresh" : "reuse") + "\",\"results\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s{\"op\":\"%s\",\"threads\":%d,\"gbs\":%.3f,\"of_triad\":%.3f}", i ? "," : "",
                  rows[i].op.c_str(), rows[i].threads, rows[i].gbs, rows[i].frac);
    json += buf;
  }
  std::printf("%s]}\n", json.c_str());
}
