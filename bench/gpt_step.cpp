// gpt_step: one measurement of tensorzoo's GPT on a CPU, printed as one JSON object, to be
// compared with bench/torch_gpt_step.py (the same model in PyTorch, same fields, same FLOP
// formula). bench/run_gpt_bench.sh runs both alternately and prints the tables.
//
//   gpt_step --config small|large --threads N --mode train|forward|generate|memory
//            [--T T] [--batch B] [--reps R] [--warmup W] [--gen-tokens 256] [--pos learned|alibi] [--ftz]
//            [--no-plan] [--isa avx512|avx2|scalar] [--json]
//
// --isa: the SIMD level of tensorzoo's kernels (bench/bench_util.h), to measure the AVX2 path
// on an AVX-512 machine; "simd" in the JSON says which ran.
// --no-plan: generate through the model's step form instead of the decode plan
// (models/decode_plan.h), to compare the two; "decode_path" in the JSON says which ran.
//
// --ftz: a diagnostic: this thread flushes denormal floats to zero (MXCSR FTZ and DAZ; the
// OpenMP workers of a 2-thread run keep their own setting). ALiBi's biases -m_h (i - j) drive
// far probabilities into the denormal range (exp of -87 to -103), where each multiply is slow;
// comparing --pos alibi with and without --ftz on one thread shows what that costs.
// --pos alibi: the same model with ALiBi (Press et al. 2021, arXiv:2108.12409; the zoo's
// `"pos": "alibi"`) instead of learned positions: no position table, each head's scores
// biased by -m_h (i - j) inside the fused attention. Only tensorzoo runs it (the runner
// compares its training speed with the learned-position model's).
//
// Model: byte vocabulary V = 256, learned positions, pre-LayerNorm blocks (fused qkv Linear,
// causal attention, GELU MLP x4), final LayerNorm, head tied to the token embedding,
// dropout 0, biases on. Configs (L layers, C width, H heads, T sequence, B batch):
//   small: C 256, L 4, H 4, T 256, B 8        large: C 512, L 6, H 8, T 512, B 4
// The context (learned positions) is max(T, prompt + gen_tokens) so that every mode builds
// the same model; the parameter count is printed so the runner can check both frameworks.
//
// Modes (each run in its own process, so peak RSS belongs to one measurement):
//   train     median ms of zero_grad, loss = model.loss(ids, targets), backward, AdamW step
//             (and "median_cpu_ms": the process's CPU time of a step, all threads)
//   forward   median ms of model.forward(ids) under NoGradGuard (logits [B, T, V])
//   generate  median tokens/s of models::generate, batch 1, greedy, gen_tokens new tokens
//             (and "median_cpu_ms": the process's CPU time of one call, spinning threads included)
//             after a 16-token prompt (KV cache); then the weight-read bound: decoding a
//             token reads every weight once (all parameters but the position table, of
//             which one row is read), so tokens/s can be at most the read bandwidth over
//             those bytes. Measured in the same process on the model's own parameter
//             memory: the median time of one pass that only reads them (an 8-way vector
//             sum as wide as the kernels run, --isa; the threads splitting the bytes
//             evenly), "read_gbs" and
//             "read_bound_tok_s" in the JSON. A token also reads the KV cache (f32 keys and
//             values of every cached position, 2 L C floats each): "kv_bytes" is their mean
//             per generated token and "read_bound_kv_tok_s" the bound counting them too
//   memory    one forward+backward (loss) at --T with batch 1: peak RSS and its growth
//
// FLOPs (analytic, the same formula in torch_gpt_step.py), per token of a sequence of T:
//   N_mm  = L * 12 C^2 + V C      weights of the matrix products (qkv 3C^2, out C^2,
//                                  fc 4C^2, proj 4C^2; the tied head V C)
//   fwd   = 2 N_mm + 4 L T C      2 per multiply-add; attention scores Q K^T and A V count
//                                  the full T x T (2 T C each per layer), as PaLM (App. B)
//                                  counts, masked half included
//   train = 3 fwd                  backward = 2x forward
// Not counted: embeddings, LayerNorm, softmax, GELU, cross-entropy, AdamW (elementwise,
// together well under 2% of the total at these sizes).
#include <immintrin.h>
#include <pmmintrin.h>
#include <sys/resource.h>
#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/random.h"
#include "models/generate.h"
#include "models/gpt.h"
#include "models/zoo.h"
#include "optim/adam.h"

using namespace tz;
using bench::median;
using bench::seconds_since;

namespace {

struct Args {
  std::string config = "small", mode = "train";
  int threads = 1;
  int64_t T = 0, batch = 0;  // 0 = the config's
  int reps = 5, warmup = 1;
  int64_t gen_tokens = 256, prompt = 16;
  std::string pos = "learned";
  bool ftz = false, no_plan = false;
};

Args parse(int argc, char** argv) {
  Args a;
  bench::Flags flags("gpt_step",
                     "--config small|large --threads N --mode train|forward|generate|memory [--T T] [--batch B] "
                     "[--reps R] [--warmup W] [--gen-tokens N] [--pos learned|alibi] [--ftz] [--no-plan] "
                     "[--isa avx512|avx2|scalar] [--json]");
  flags.word("--config", a.config, {"small", "large"})
      .whole("--threads", a.threads, 1)
      .word("--mode", a.mode, {"train", "forward", "generate", "memory"})
      .whole("--T", a.T, 1)
      .whole("--batch", a.batch, 1)
      .whole("--reps", a.reps, 1)
      .whole("--warmup", a.warmup, 0)
      .whole("--gen-tokens", a.gen_tokens, 1)
      .word("--pos", a.pos, {"learned", "alibi"})
      .toggle("--ftz", a.ftz)
      .toggle("--no-plan", a.no_plan)
      .isa()
      .accept("--json");  // the output is always one JSON object
  flags.parse(argc, argv);
  return a;
}

// VmHWM (peak resident set) or VmRSS from /proc/self/status, in MiB.
double proc_status_mb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::strlen(key) + 1) / 1024.0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

// CPU seconds of this process, every thread, user + system: the work of a step, which other
// processes on a shared machine inflate far less than its wall time.
double cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// The weight-read bound of decoding (see the header): the bytes of every parameter but the
// position table, and the median time of reading them all once.
struct ReadBound {
  double bytes = 0, seconds = 0;
};
// The sum of floats p[0, n) (p 64-byte aligned) as one streaming read: 8 vector accumulators
// of W floats, the loads and adds of a read and nothing else. GCC lowers the generic vectors
// for the ISA of the function they are inlined into, so there is one form per SIMD level the
// kernels may run at (--isa): a portable build's bound must not be read by baseline SSE2
// code, which on Zen 5 reads L3 at a third of what AVX2 loads do. W is the ISA's register
// width: wider generic vectors than the registers are kept on the stack (as slow as SSE2).
// Returns how many floats it summed.
typedef float f4 __attribute__((vector_size(16)));
typedef float f8 __attribute__((vector_size(32)));
typedef float f16 __attribute__((vector_size(64)));
template <class vec, int W = sizeof(vec) / 4>
__attribute__((always_inline)) inline int64_t read_vectors(const float* p, int64_t n, float& sum) {
  vec acc[8] = {};
  int64_t i = 0;
  for (; i + 8 * W <= n; i += 8 * W)
    for (int u = 0; u < 8; ++u) acc[u] += *reinterpret_cast<const vec*>(p + i + W * u);
  for (int u = 1; u < 8; ++u) acc[0] += acc[u];
  for (int l = 0; l < W; ++l) sum += acc[0][l];
  return i;
}
__attribute__((target("avx512f"))) int64_t read_avx512(const float* p, int64_t n, float& sum) {
  return read_vectors<f16>(p, n, sum);
}
__attribute__((target("avx2"))) int64_t read_avx2(const float* p, int64_t n, float& sum) {
  return read_vectors<f8>(p, n, sum);
}
int64_t read_baseline(const float* p, int64_t n, float& sum) { return read_vectors<f4>(p, n, sum); }

ReadBound weight_read_bound(nn::Module& model, int reps) {
  struct Span {
    const float* p;
    int64_t n;
  };
  std::vector<Span> spans;
  ReadBound r;
  for (auto& [name, t] : model.named_parameters()) {
    if (name.rfind("pos.", 0) == 0) continue;
    spans.push_back({t.data<float>(), t.numel()});
    r.bytes += double(t.numel()) * 4;
  }
  // Thread t reads the t-th share of the concatenated spans.
  const int threads = get_num_threads();
  const int64_t total = int64_t(r.bytes / 4);
  const SimdLevel level = simd_level();
  auto read_range = [&](int64_t lo, int64_t hi) {
    float sum = 0;
    int64_t base = 0;
    for (const Span& s : spans) {
      const int64_t a0 = std::max(lo, base) - base, a1 = std::min(hi, base + s.n) - base;
      base += s.n;
      if (a0 >= a1) continue;
      int64_t i = a0;
      for (; i < a1 && (reinterpret_cast<uintptr_t>(s.p + i) & 63); ++i) sum += s.p[i];
      if (level == SimdLevel::avx512)
        i += read_avx512(s.p + i, a1 - i, sum);
      else if (level == SimdLevel::avx2)
        i += read_avx2(s.p + i, a1 - i, sum);
      else
        i += read_baseline(s.p + i, a1 - i, sum);
      for (; i < a1; ++i) sum += s.p[i];
    }
    return sum;
  };
  std::vector<double> times;
  std::vector<float> part(size_t(threads), 0.0f);
  volatile float sink = 0;
  for (int rep = 0; rep < std::max(reps, 1) * 10 + 2; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_for(threads, total / threads, [&](int64_t t0_, int64_t t1_) {
      for (int64_t t = t0_; t < t1_; ++t) part[size_t(t)] = read_range(total * t / threads, total * (t + 1) / threads);
    });
    const double sec = seconds_since(t0);
    sink = sink + part[0];
    if (rep >= 2) times.push_back(sec);
  }
  r.seconds = median(times);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  set_num_threads(a.threads);
  if (a.ftz) {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
  }

  models::GPTConfig c;
  int64_t T = 256, B = 8;
  if (a.config == "small") {
    c.dim = 256, c.depth = 4, c.heads = 4;
  } else {
    c.dim = 512, c.depth = 6, c.heads = 8, T = 512, B = 4;
  }
  if (a.mode == "memory") B = 1;
  if (a.T > 0) T = a.T;
  if (a.batch > 0) B = a.batch;
  c.vocab = 256, c.mlp_mult = 4, c.activation = "gelu", c.norm = "layernorm";
  c.bias = true, c.dropout = 0.0, c.tie_weights = true;
  c.context = std::max(T, a.prompt + a.gen_tokens);

  Generator init_gen(1234);
  // GPT is the LM of c.to_json(); ALiBi replaces its position scheme.
  nlohmann::json cj = nlohmann::json::parse(c.to_json());
  if (a.pos == "alibi") cj["pos"] = "alibi";
  models::LM model(nn::Config::parse(cj.dump(), "gpt_step"), zoo::registry(), init_gen);
  const int64_t params = model.num_parameters();

  // Random bytes from a fixed seed; targets are the inputs shifted by one.
  Generator data_gen(42);
  Tensor seq = randint(0, c.vocab, {B, T + 1}, data_gen);
  Tensor ids = seq.narrow(1, 0, T).contiguous();
  Tensor targets = seq.narrow(1, 1, T).contiguous();

  const double L = double(c.depth), C = double(c.dim), V = double(c.vocab), Td = double(T);
  const double n_mm = L * 12 * C * C + V * C;
  const double fwd_per_token = 2 * n_mm + 4 * L * Td * C;
  const double tokens = double(B) * Td;

  std::vector<double> times, cpu_times;  // cpu_times: train and memory modes
  double flops = 0, work_tokens = tokens, first_loss = 0;
  ReadBound read_bound;     // generate only
  double kv_bytes = 0;      // generate only: mean KV-cache bytes a token reads
  std::string decode_path;  // generate only
  const double rss_before = proc_status_mb("VmRSS:");

  if (a.mode == "train" || a.mode == "memory") {
    model.train();
    auto groups = optim::decay_groups(model.named_parameters(), 0.1);
    std::unique_ptr<optim::AdamW> opt;
    if (a.mode == "train") opt = std::make_unique<optim::AdamW>(std::move(groups), optim::AdamWOptions{.lr = 3e-4});
    const int total = a.mode == "memory" ? 1 : a.warmup + a.reps;
    for (int i = 0; i < total; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      if (opt) opt->zero_grad();
      Tensor loss = model.loss(ids, targets);
      loss.backward();
      if (opt) opt->step();
      const double s = seconds_since(t0);
      if (i == 0) first_loss = loss.item();
      if (a.mode == "memory" || i >= a.warmup) times.push_back(s), cpu_times.push_back(cpu_seconds() - c0);
    }
    flops = 3 * fwd_per_token * tokens;
  } else if (a.mode == "forward") {
    model.eval();
    NoGradGuard no_grad;
    for (int i = 0; i < a.warmup + a.reps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      Tensor logits = model.forward(ids);
      const double s = seconds_since(t0);
      if (i == 0) first_loss = logits.reshape({-1}).narrow(0, 0, 1).item();
      if (i >= a.warmup) times.push_back(s);
    }
    flops = fwd_per_token * tokens;
  } else {  // generate
    model.eval();
    Generator pg(7);
    std::vector<int64_t> prompt(size_t(a.prompt));
    for (auto& t : prompt) t = pg.randint(0, c.vocab);
    models::SampleOptions so{.max_new_tokens = a.gen_tokens, .temperature = 0.0, .decode_plan = !a.no_plan};
    decode_path = models::decode_path(model, so);
    for (int i = 0; i < a.warmup + a.reps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      std::vector<int64_t> out = models::generate(model, prompt, so);
      const double s = seconds_since(t0);
      if (i == 0) first_loss = double(out.size());
      if (i >= a.warmup) times.push_back(s), cpu_times.push_back(cpu_seconds() - c0);
    }
    work_tokens = double(a.gen_tokens);
    read_bound = weight_read_bound(model, a.reps);
    // Per generated token: 2 N_mm + 4 L S C with S its cached context (prompt + i), summed.
    flops = 0;
    for (int64_t i = 0; i < a.gen_tokens; ++i) flops += 2 * n_mm + 4 * L * double(a.prompt + i) * C;
    flops += 2 * n_mm * double(a.prompt);  // the prefill
    // Token i attends over prompt + i + 1 cached positions (its own key and value included).
    for (int64_t i = 0; i < a.gen_tokens; ++i) kv_bytes += 2 * L * C * 4 * double(a.prompt + i + 1);
    kv_bytes /= double(a.gen_tokens);
  }

  const double med = median(times);
  const double bound_tok_s = read_bound.seconds > 0 ? 1.0 / read_bound.seconds : 0.0;
  const double read_bytes = read_bound.bytes + kv_bytes;  // 0 outside generate: no bound
  const double bound_kv_tok_s = read_bytes > 0 ? bound_tok_s * read_bound.bytes / read_bytes : 0.0;
  const double peak = proc_status_mb("VmHWM:");
  std::printf(
      "{\"framework\":\"tensorzoo\",\"config\":\"%s\",\"pos\":\"%s\",\"ftz\":%s,\"mode\":\"%s\",\"threads\":%d,\"T\":%"
      "lld,"
      "\"batch\":%lld,\"params\":%lld,\"reps\":%zu,\"median_ms\":%.3f,\"min_ms\":%.3f,"
      "\"tokens_per_s\":%.1f,\"flops\":%.6e,\"gflops\":%.2f,\"peak_rss_mb\":%.1f,"
      "\"rss_before_mb\":%.1f,\"step_mem_mb\":%.1f,\"check\":%.6g,\"omp_wait_policy\":\"%s\","
      "\"weight_bytes\":%.0f,\"read_gbs\":%.2f,\"read_bound_tok_s\":%.1f,\"kv_bytes\":%.0f,"
      "\"read_bound_kv_tok_s\":%.1f,\"median_cpu_ms\":%.3f,"
      "\"decode_path\":\"%s\",\"simd\":\"%s\"}\n",
      a.config.c_str(), a.pos.c_str(), a.ftz ? "true" : "false", a.mode.c_str(), a.threads, (long long)T,
      (long long)(a.mode == "generate" ? 1 : B), (long long)params, times.size(), med * 1e3,
      *std::min_element(times.begin(), times.end()) * 1e3, work_tokens / med, flops, flops / med / 1e9, peak,
      rss_before, peak - rss_before, first_loss, std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "",
      read_bound.bytes, read_bound.seconds > 0 ? read_bound.bytes / read_bound.seconds / 1e9 : 0.0, bound_tok_s,
      kv_bytes, bound_kv_tok_s, cpu_times.empty() ? 0.0 : median(cpu_times) * 1e3, decode_path.c_str(),
      simd_level_name(simd_level()));
  return 0;
}
