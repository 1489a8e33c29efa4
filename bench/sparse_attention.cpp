// sparse_attention: one forward + backward of causal sparse attention through the autograd op
// (f32, B 1, H 4, D 64): a sliding window of 256 keys (WindowMask), BigBird's block layout
// (b 64, one window block each side, one global block, 2 random blocks, seed 0; the layout
// mask term built once per shape, one pattern call per 32 x 32 tile thanks to its granule,
// the build timed apart) and full causal attention. bench/torch_sparse_attention.py is the
// PyTorch twin (same inputs, same JSON); bench/run_sparse_attention_bench.sh runs both.
//
//   sparse_attention [--quick]     a table at T 1k, 4k, 16k (--quick: 1k, 4k); memory is the
//                                  allocator's peak above what was live before the call
//   sparse_attention --json --pattern window|bigbird|full --T N [--threads N] [--reps R]
//                                  one JSON line: least and median ms of --reps after a
//                                  warm-up, the least CPU ms (all threads), forward ms, peak
//                                  RSS above the RSS once the inputs exist (VmHWM; one
//                                  measurement per process, after a forward + backward at
//                                  T 512 paged in the code), the allocator's peak, and
//                                  loss = sum(o g), |dq|_1 to compare with PyTorch
//   sparse_attention --bigbird-blocks 1024,4096   per T one JSON line of the BigBird key-block
//                                  lists [H][T/64][...] (the pattern read at block corners: it
//                                  is constant on 64 x 64 blocks), for the PyTorch twin
//   sparse_attention --rss [--T 1024,2048,...]    peak RSS and time of one forward + backward
//                                  of a window-256 attention layer (the zoo's local_attention
//                                  mixer, C 256, H 4) per T, each T in a fresh process of this
//                                  program (--rss-one T); growth per doubling of the step's
//                                  memory and CPU time, <= 2.2x passes
//
// Inputs: element n (flat) of q, k, v, g (t = 0, 1, 2, 3) is sin(1.3 n + t) cos(0.017 n + 2 t),
// computed in f64 and rounded to f32, the same numbers torch_sparse_attention.py makes.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "core/allocator.h"
#include "core/creation.h"
#include "core/kernels/attention_layout.h"
#include "core/parallel.h"
#include "core/random.h"
#include "models/zoo.h"

extern char** environ;

using namespace tz;

namespace {
constexpr int64_t kH = 4, kD = 64, kW = 256;

// VmRSS / VmHWM from /proc/self/status, in MiB.
double status_mb(const char* key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::strlen(key)) / 1024.0;
  return 0;
}

// CPU seconds of this process (every thread), user + system.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

Tensor input(int64_t T, int t) {
  std::vector<float> x(size_t(kH * T * kD));
  for (size_t n = 0; n < x.size(); ++n)
    x[n] = float(std::sin(1.3 * double(n) + t) * std::cos(0.017 * double(n) + 2 * t));
  return from_vector(x, {1, kH, T, kD});
}

kernels::SparsePattern bigbird(int64_t H, int64_t S) { return kernels::bigbird_pattern(64, 1, 1, 2, 0, H, S); }

std::shared_ptr<const kernels::MaskTerm> term_of(const std::string& pattern, int64_t T) {
  if (pattern == "window") return std::make_shared<kernels::WindowMask>(kW);
  if (pattern == "bigbird")
    return std::make_shared<kernels::LayoutMask>(std::make_shared<kernels::BlockLayout>(bigbird(kH, T), kH, T));
  return nullptr;
}

struct Result {
  double ms, median_ms, cpu_ms, fwd_ms, alloc_mb, rss_mb, loss, dq_l1;
};

// One forward + backward of the pattern at T.
void once(const std::string& pattern, int64_t T) {
  Tensor q = input(T, 0).requires_grad_(), k = input(T, 1).requires_grad_(), v = input(T, 2).requires_grad_();
  auto mask = std::make_shared<kernels::AttentionMask>();
  if (auto t = term_of(pattern, T)) mask->terms = {t};
  attention(q, k, v, {.causal = true, .mask = mask}).backward(input(T, 3));
}

Result measure(int64_t T, const std::shared_ptr<const kernels::MaskTerm>& term, int reps) {
  Tensor q = input(T, 0).requires_grad_(), k = input(T, 1).requires_grad_(), v = input(T, 2).requires_grad_(),
         g = input(T, 3);
  std::shared_ptr<kernels::AttentionMask> mask;
  if (term) {
    mask = std::make_shared<kernels::AttentionMask>();
    mask->terms = {term};
  }
  const AttentionSpec spec{.causal = true, .mask = mask};
  const double rss0 = status_mb("VmRSS:");
  std::vector<double> ms, fwd, cpu;
  double peak = 0, loss = 0;
  for (int r = 0; r <= reps; ++r) {  // r = 0: warm-up
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
    const size_t base = allocator_stats().live_bytes;
    reset_allocator_peak();
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    Tensor o = attention(q, k, v, spec);
    const double f = bench::seconds_since(t0);
    o.backward(g);
    const double all = bench::seconds_since(t0), c = cpu_seconds() - c0;
    peak = std::max(peak, double(allocator_stats().peak_bytes - base) / (1 << 20));
    if (r > 0) ms.push_back(1e3 * all), fwd.push_back(1e3 * f), cpu.push_back(1e3 * c);
    if (r == reps) loss = sum(mul(o.detach(), g)).item();
  }
  double dq = 0;
  for (float x : q.grad().to_vector<float>()) dq += std::abs(double(x));
  return {*std::min_element(ms.begin(), ms.end()),
          bench::median(ms),
          *std::min_element(cpu.begin(), cpu.end()),
          *std::min_element(fwd.begin(), fwd.end()),
          peak,
          status_mb("VmHWM:") - rss0,
          loss,
          dq};
}

// The human-readable table of the plain run.
int table(bool quick) {
  std::vector<int64_t> Ts{1024, 4096};
  if (!quick) Ts.push_back(16384);
  std::printf("causal attention forward + backward, f32, B 1, H %lld, D %lld\n", (long long)kH, (long long)kD);
  std::printf("%-28s %7s %10s %10s %12s\n", "form", "T", "ms", "peak MB", "ms per 1k T");
  auto row = [](const char* what, int64_t T, Result r) {
    std::printf("%-28s %7lld %10.1f %10.2f %12.2f\n", what, (long long)T, r.median_ms, r.alloc_mb,
                r.median_ms / (double(T) / 1024));
  };
  for (int64_t T : Ts) row("sliding window w 256", T, measure(T, term_of("window", T), 3));
  for (int64_t T : Ts) {
    kernels::LayoutCache cache(bigbird);
    const auto t0 = std::chrono::steady_clock::now();
    auto term = cache.get(kH, T);
    const double build = 1e3 * bench::seconds_since(t0);
    row("bigbird b 64 (layout cached)", T, measure(T, term, 3));
    std::printf("%-28s %7lld %10.1f\n", "  bigbird layout build", (long long)T, build);
  }
  for (int64_t T : Ts)
    if (T <= 4096) row("full causal", T, measure(T, nullptr, 3));
  return 0;
}

// Key-block lists of BigBird per head and query block, as JSON.
void bigbird_blocks(int64_t T) {
  const kernels::SparsePattern p = bigbird(kH, T);
  const int64_t b = 64, nb = T / b;
  std::string s = "{\"T\": " + std::to_string(T) + ", \"b\": 64, \"blocks\": [";
  for (int64_t h = 0; h < kH; ++h) {
    s += h ? ", [" : "[";
    for (int64_t qb = 0; qb < nb; ++qb) {
      s += qb ? ", [" : "[";
      bool first = true;
      for (int64_t kb = 0; kb <= qb; ++kb)
        if (p.visible(h, qb * b, kb * b)) s += (first ? "" : ", ") + std::to_string(kb), first = false;
      s += "]";
    }
    s += "]";
  }
  std::printf("%s]}\n", s.c_str());
}

// One forward + backward of the local_attention layer at T in this (fresh) process.
void rss_one(int64_t T) {
  const double rss_start = status_mb("VmRSS:");
  Generator gen(1);
  auto layer = zoo::registry().make_mixer("local_attention", nn::ModelDims{.dim = kH * kD, .heads = kH, .context = T},
                                          nn::Config::parse(R"({"sparse_window": 256})"), gen);
  Tensor x = randn({1, T, kH * kD}, gen).requires_grad_(), g = randn({1, T, kH * kD}, gen);
  const double rss0 = status_mb("VmRSS:");
  std::vector<double> ms, cpu;
  for (int r = 0; r < 5; ++r) {  // the first (cold) run sets the peak; times are the least of the 5
    x.zero_grad();
    layer->zero_grad();
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    layer->forward(x, {}).backward(g);
    ms.push_back(1e3 * bench::seconds_since(t0));
    cpu.push_back(1e3 * (cpu_seconds() - c0));
  }
  std::printf(
      "{\"T\": %lld, \"ms\": %.3f, \"cpu_ms\": %.3f, \"rss_start_mb\": %.2f, \"rss_before_mb\": %.2f, "
      "\"peak_rss_mb\": %.2f}\n",
      (long long)T, *std::min_element(ms.begin(), ms.end()), *std::min_element(cpu.begin(), cpu.end()), rss_start, rss0,
      status_mb("VmHWM:"));
}

// Runs this program with args; returns its standard output.
std::string run_self(const std::vector<std::string>& args) {
  std::vector<char> exe(4096, 0);
  if (readlink("/proc/self/exe", exe.data(), exe.size() - 1) < 0) throw Error("sparse_attention: no /proc/self/exe");
  int fd[2];
  if (pipe(fd) != 0) throw Error("sparse_attention: pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  std::vector<std::string> all{exe.data()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawn(&pid, exe.data(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  if (rc != 0) throw Error("sparse_attention: cannot start itself");
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw Error("sparse_attention: a child run failed");
  return out;
}

double field(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) throw Error("sparse_attention: no " + key + " in " + json);
  return std::atof(json.c_str() + at + key.size() + 4);
}

// Growth per doubling of T between two rows.
double per_doubling(double a, double b, int64_t Ta, int64_t Tb) {
  return std::pow(b / a, 1.0 / std::log2(double(Tb) / double(Ta)));
}

// Causal pairs a window of w keeps over T queries: the first w rows hold a triangle.
double window_pairs(int64_t T, int64_t w) {
  const int64_t m = std::min(T, w);
  return double(m * (m + 1) / 2 + (T - m) * w);
}

int rss_table(const std::vector<int64_t>& Ts) {
  std::printf(
      "one forward + backward of local_attention (w 256, C 256, H 4, D 64, f32, B 1), each T in a fresh process; "
      "step memory = peak RSS (VmHWM) - RSS once the layer and inputs exist; wall and CPU time (all threads, user + "
      "system: the work, which other processes on the machine do not inflate), the least of 5 runs; growth per "
      "doubling of T, beside that of the attention pairs (T w - w (w - 1) / 2: the first w rows are a triangle)\n");
  std::printf("| T | wall ms | CPU ms | growth | pairs growth | peak RSS MB | step MB | growth |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  double worst_mem = 0, worst_ms = 0, prev_ms = 0, prev_mb = 0;
  int64_t prev_T = 0;
  auto x = [](double v) {
    char s[32];
    std::snprintf(s, sizeof s, "%.2fx", v);
    return std::string(s);
  };
  for (int64_t T : Ts) {
    const std::string out = run_self({"--rss-one", std::to_string(T)});
    const double wall = field(out, "ms"), ms = field(out, "cpu_ms"), peak = field(out, "peak_rss_mb"),
                 step = peak - field(out, "rss_before_mb");
    std::string gm, gt, gp;
    if (prev_T) {
      const double a = per_doubling(prev_ms, ms, prev_T, T), b = per_doubling(prev_mb, step, prev_T, T);
      worst_ms = std::max(worst_ms, a), worst_mem = std::max(worst_mem, b);
      gt = x(a), gm = x(b), gp = x(per_doubling(window_pairs(prev_T, kW), window_pairs(T, kW), prev_T, T));
    }
    std::printf("| %lld | %.1f | %.1f | %s | %s | %.1f | %.1f | %s |\n", (long long)T, wall, ms, gt.c_str(), gp.c_str(),
                peak, step, gm.c_str());
    std::fflush(stdout);
    prev_T = T, prev_ms = ms, prev_mb = step;
  }
  const bool ok = worst_mem <= 2.2 && worst_ms <= 2.2;
  std::printf("\nlargest growth per doubling: memory %.2fx, CPU time %.2fx (linear: <= 2.2x): %s\n", worst_mem,
              worst_ms, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, json = false, rss = false;
  std::string pattern;
  std::vector<int64_t> Ts, blocks;
  int64_t rss_one_T = 0;
  int threads = 0, reps = 3;
  bench::Flags flags("sparse_attention",
                     "[--quick]\n       sparse_attention --json --pattern window|bigbird|full --T N [--threads N] "
                     "[--reps R]\n       sparse_attention --bigbird-blocks T,T,...\n       sparse_attention --rss "
                     "[--T T,T,...]");
  flags.toggle("--quick", quick)
      .toggle("--json", json)
      .toggle("--rss", rss)
      .list("--bigbird-blocks", blocks)
      .whole("--rss-one", rss_one_T, 1)  // one child of --rss
      .word("--pattern", pattern, {"window", "bigbird", "full"})
      .list("--T", Ts)
      .whole("--threads", threads, 1)
      .whole("--reps", reps, 1);
  flags.parse(argc, argv);
  if (threads > 0) set_num_threads(threads);
  if (!blocks.empty()) {
    for (int64_t T : blocks) bigbird_blocks(T);
    return 0;
  }
  if (rss_one_T > 0) {
    rss_one(rss_one_T);
    return 0;
  }
  if (rss) return rss_table(Ts.empty() ? std::vector<int64_t>{1024, 2048, 4096, 8192, 16384} : Ts);
  if (!json) return table(quick);
  if (pattern.empty()) flags.fail("--json needs --pattern");
  if (Ts.size() != 1) flags.fail("--json needs one --T");
  const int64_t T = Ts[0];
  once(pattern, 512);  // pages in the code it runs before the memory baseline, as the PyTorch twin does
  const Result r = measure(T, term_of(pattern, T), reps);
  std::printf(
      "{\"impl\": \"tensorzoo\", \"pattern\": \"%s\", \"T\": %lld, \"threads\": %d, \"ms\": %.3f, \"median_ms\": %.3f, "
      "\"cpu_ms\": %.3f, \"fwd_ms\": %.3f, \"peak_mb\": %.2f, \"alloc_peak_mb\": %.2f, \"loss\": %.9g, \"dq_l1\": "
      "%.9g}\n",
      pattern.c_str(), (long long)T, get_num_threads(), r.ms, r.median_ms, r.cpu_ms, r.fwd_ms, r.rss_mb, r.alloc_mb,
      r.loss, r.dq_l1);
  return 0;
}
