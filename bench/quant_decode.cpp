// quant_decode: decoding speed with the linear layers' weights in f32, bf16 or int8 (q8_0),
// and the GEMV kernels behind it; bench/run_quant_bench.sh runs it beside PyTorch's f32
// generation (bench/torch_gpt_step.py) and prints the ratios.
//
//   quant_decode --mode generate --weights f32|bf16|int8 --config small|large --threads N
//                [--gen-tokens 256] [--reps R] [--warmup W] [--isa avx512|avx2|scalar]
//       the GPT of bench/gpt_step.cpp (same config, seed and prompt), its Linear weights
//       quantized in place (models/quantize.h's layout, nn::Linear::set_quantized), greedy
//       generation of gen_tokens after a 16-token prompt: median tokens/s, the weight bytes a
//       token reads, the peak RSS (the f32 model built first included) and the RSS after
//       generating (weights as kept), as one JSON line.
//   quant_decode --mode kernels --config large --threads N
//       every quantized GEMV kernel this CPU runs (core/kernels/quant.h) and the f32 GEMV on
//       the large model's matrices (per layer qkv [3C, C], out [C, C], fc [4C, C], proj
//       [C, 4C]; all layers, so the weights come from L3 or DRAM as in decoding), M = 1..4:
//       microseconds per token-pass and weight GB/s, one JSON line per kernel and M.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/allocator.h"
#include "core/creation.h"
#include "core/kernels/gemm.h"
#include "core/kernels/quant.h"
#include "core/parallel.h"
#include "core/quant.h"
#include "core/random.h"
#include "models/generate.h"
#include "models/gpt.h"
#include "models/quantize.h"
#include "models/zoo.h"

using namespace tz;
using bench::median;
using bench::seconds_since;

namespace {

struct Args {
  std::string mode = "generate", weights = "f32", config = "large";
  int threads = 1, reps = 3, warmup = 1;
  int64_t gen_tokens = 256, prompt = 16;
};

Args parse(int argc, char** argv) {
  Args a;
  bench::Flags flags("quant_decode",
                     "--mode generate|kernels [--weights f32|bf16|int8] [--config small|large] [--threads N] "
                     "[--gen-tokens N] [--reps R] [--warmup W] [--isa avx512|avx2|scalar]");
  flags.word("--mode", a.mode, {"generate", "kernels"})
      .word("--weights", a.weights, {"f32", "bf16", "int8"})
      .word("--config", a.config, {"small", "large"})
      .whole("--threads", a.threads, 1)
      .whole("--reps", a.reps, 1)
      .whole("--warmup", a.warmup, 0)
      .whole("--gen-tokens", a.gen_tokens, 1)
      .isa();  // the SIMD level of every kernel
  flags.parse(argc, argv);
  return a;
}

// VmHWM (peak resident set) or VmRSS (resident now) from /proc/self/status, in MiB.
double status_mb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::strlen(key)) / 1024.0;
  return 0;
}

models::GPTConfig gpt_config(const Args& a) {  // as bench/gpt_step.cpp
  models::GPTConfig c;
  if (a.config == "small")
    c.dim = 256, c.depth = 4, c.heads = 4;
  else
    c.dim = 512, c.depth = 6, c.heads = 8;
  c.vocab = 256, c.mlp_mult = 4, c.activation = "gelu", c.norm = "layernorm";
  c.bias = true, c.dropout = 0.0, c.tie_weights = true;
  c.context = std::max<int64_t>(a.config == "small" ? 256 : 512, a.prompt + a.gen_tokens);
  return c;
}

int generate(const Args& a) {
  const models::GPTConfig c = gpt_config(a);
  Generator init_gen(1234);
  models::LM model(c.to_config(), zoo::registry(), init_gen);
  model.eval();
  double bytes = 0;  // what a token reads: every parameter but the position table, as stored
  if (a.weights != "f32") {
    const QuantScheme scheme = a.weights == "int8" ? QuantScheme::q8_0 : QuantScheme::bf16;
    for (auto& [name, lin] : models::linear_layers(model))
      lin->set_quantized(QuantizedMatrix::quantize(lin->weight, scheme));
    empty_cache();
    for (auto& [name, lin] : models::linear_layers(model)) bytes += double(lin->quantized()->bytes());
  }
  for (auto& [name, t] : model.named_parameters())
    if (name.rfind("pos.", 0) != 0) bytes += double(t.numel()) * 4;

  Generator pg(7);
  std::vector<int64_t> prompt(size_t(a.prompt));
  for (auto& t : prompt) t = pg.randint(0, c.vocab);
  models::SampleOptions so{.max_new_tokens = a.gen_tokens, .temperature = 0.0};
  std::vector<double> times;
  uint64_t check = 0;  // a hash of the tokens: the same for every weight format when greedy agrees
  for (int i = 0; i < a.warmup + a.reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int64_t> out = models::generate(model, prompt, so);
    const double s = seconds_since(t0);
    if (i == 0)
      for (int64_t t : out) check = check * 31 + uint64_t(t);
    if (i >= a.warmup) times.push_back(s);
  }
  const double med = median(times);
  std::printf(
      "{\"framework\":\"tensorzoo\",\"weights\":\"%s\",\"config\":\"%s\",\"mode\":\"generate\",\"threads\":%d,"
      "\"reps\":%zu,\"median_ms\":%.3f,\"tokens_per_s\":%.1f,\"weight_bytes\":%.0f,\"peak_rss_mb\":%.1f,\"rss_mb\":%."
      "1f,"
      "\"simd\":\"%s\",\"q8_kernel\":\"%s\",\"bf16_kernel\":\"%s\",\"check\":%llu}\n",
      a.weights.c_str(), a.config.c_str(), a.threads, times.size(), med * 1e3, double(a.gen_tokens) / med, bytes,
      status_mb("VmHWM:"), status_mb("VmRSS:"), simd_level_name(simd_level()), kernels::q8_gemv_kernel().name,
      kernels::bf16_gemv_kernel().name, (unsigned long long)(check % 1000000007));
  return 0;
}

// ---- kernels ---------------------------------------------------------------------------------

struct Mat {
  int64_t N, K;
  std::vector<float> w;
  std::vector<int8_t> q;
  std::vector<float> s;
  std::vector<uint16_t> b;
};

int kernels_mode(const Args& a) {
  const models::GPTConfig c = gpt_config(a);
  const int64_t C = c.dim;
  std::vector<Mat> mats;
  Generator gen(3);
  for (int64_t l = 0; l < c.depth; ++l)
    for (auto [N, K] : {std::pair{3 * C, C}, std::pair{C, C}, std::pair{4 * C, C}, std::pair{C, 4 * C}}) {
      Mat m{N, K};
      m.w = randn({N, K}, gen, DType::f32, 0.0, 0.02).to_vector<float>();
      m.q.resize(size_t(N * K));
      m.s.resize(size_t(N * K / kernels::kQ8Block));
      m.b.resize(size_t(N * K));
      kernels::quantize_q8_0(m.q.data(), m.s.data(), m.w.data(), N, K);
      kernels::quantize_bf16(m.b.data(), m.w.data(), N * K);
      mats.push_back(std::move(m));
    }
  std::vector<float> x = randn({4, 4 * C}, gen).to_vector<float>(), y(size_t(4 * 4 * C));
  auto time_pass = [&](auto&& run_one) {  // median seconds of one pass over every matrix
    std::vector<double> t;
    for (int r = 0; r < 3 + 10 * a.reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (const Mat& m : mats) run_one(m);
      if (r >= 3) t.push_back(seconds_since(t0));
    }
    return median(t);
  };
  auto report = [&](const char* format, const char* kernel, int64_t M, double sec, double bytes) {
    std::printf(
        "{\"mode\":\"kernels\",\"format\":\"%s\",\"kernel\":\"%s\",\"M\":%lld,\"threads\":%d,\"us\":%.1f,"
        "\"weight_gbs\":%.2f}\n",
        format, kernel, (long long)M, a.threads, sec * 1e6, bytes / sec / 1e9);
    std::fflush(stdout);
  };
  // Each kernel over the output rows split as the dispatchers split them.
  auto split = [&](int64_t N, int64_t K, int64_t M, auto&& fn) {
    if (N * K < 4 * parallel_grain())
      fn(0, N);
    else
      parallel_for(N, 2 * M * K, fn);
  };
  double q8_bytes = 0, bf_bytes = 0, f32_bytes = 0;
  for (const Mat& m : mats) {
    q8_bytes += double(m.N * m.K) * (1 + 4.0 / kernels::kQ8Block);
    bf_bytes += double(m.N * m.K) * 2;
    f32_bytes += double(m.N * m.K) * 4;
  }
  for (int64_t M = 1; M <= kernels::kQuantGemvMaxM; ++M) {
    report("f32", simd_level_name(simd_level()), M, time_pass([&](const Mat& m) {
             kernels::gemm(kernels::GemmArgs<float>{y.data(), m.N, x.data(), m.K, false, m.w.data(), m.K, true, M, m.N,
                                                    m.K, 1.0f, 0.0f});
           }),
           f32_bytes);
    kernels::Q8Activations xq;
    for (const kernels::Q8Kernel& k : kernels::q8_gemv_kernels()) {
      if (!k.runs || k.level == 0) continue;
      const bool q8q8 = k.reference == &kernels::gemv_q8q8_ref;
      report("q8_0", k.name, M, time_pass([&](const Mat& m) {
               const kernels::QuantGemvArgs g{y.data(), m.N, x.data(), m.K, M, m.N, m.K, nullptr};
               if (q8q8) kernels::quantize_activations(xq, g);  // counted: it is part of every call
               split(m.N, m.K, M, [&](int64_t n0, int64_t n1) { k.fn(g, xq, m.q.data(), m.s.data(), n0, n1); });
             }),
             q8_bytes);
    }
    for (const kernels::Bf16Kernel& k : kernels::bf16_gemv_kernels()) {
      if (!k.runs || k.level == 0) continue;
      report("bf16", k.name, M, time_pass([&](const Mat& m) {
               const kernels::QuantGemvArgs g{y.data(), m.N, x.data(), m.K, M, m.N, m.K, nullptr};
               split(m.N, m.K, M, [&](int64_t n0, int64_t n1) { k.fn(g, m.b.data(), n0, n1); });
             }),
             bf_bytes);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  set_num_threads(a.threads);
  try {
    return a.mode == "generate" ? generate(a) : kernels_mode(a);
  } catch (const Error& e) {
    std::fprintf(stderr, "quant_decode: %s\n", e.what());
    return 1;
  }
}
