// memory_step: one measurement of segment memory (Transformer-XL, Dai et al. 2019,
// arXiv:1901.02860; models/segment_memory.h) in tensorzoo on a CPU, printed as one JSON object,
// to be compared with bench/torch_memory_step.py (the same model in PyTorch, same fields).
// bench/run_memory_bench.sh runs both alternately and prints the tables.
//
//   memory_step --mode train|decode --mem M --threads N [--batch B] [--reps R] [--warmup W]
//               [--history H] [--gen-tokens G] [--json]
//   memory_step --mode check --mem M --out FILE.safetensors
//
// Model (both frameworks): byte vocabulary V = 256, C 256, L 4 layers, 4 heads, no positions
// (pos "none": a NoPE decoder, which segment memory allows), pre-LayerNorm blocks (causal
// attention, GELU MLP x4), final LayerNorm, head tied to the token embedding, dropout 0,
// biases on. Segment length T = context = 256. M = mem_len: 0 = the plain model.
//
//   layer n over segment τ: keys, values from [mem^n_τ ; u^n_τ], queries from u^n_τ
//   mem^n_{τ+1} = last M rows of [mem^n_τ ; SG(u^n_τ)]      u^n = layer n's normed mixer input
//
// Modes (each run in its own process):
//   train   median ms of zero_grad, loss, backward, AdamW step over B = 8 sequences. M = 0:
//           model.loss(ids, targets) on a segment; M > 0: model.loss(batch, memory) with the
//           memory of make_memory(B) carried from step to step (step i reads segment i of one
//           long random stream, so every timed step attends to a full memory of M rows).
//   decode  batch 1, greedy: feed a history of H random tokens (in chunks of T, untimed), then
//           time G greedy steps (ms per token; a fresh state is restored to the end of
//           the history before each rep). M > 0: make_state + step, which moves each full segment
//           into the memory, so a step sees at most M + T keys whatever H. M = 0: the plain
//           model with a KV cache over the whole history (context = H + G keys). G = T by
//           default: a whole segment, so TXL's once-per-segment cost (moving the segment into
//           the memory and projecting the memory's keys) weighs as it does in a long run.
//   check   writes the parameters, ids [2, 3T] and the logits of reading them as three
//           segments with memory M (eval) to a safetensors file, for torch_memory_step.py
//           --check-against: the twin must compute the same logits from the same weights.
//
// FLOPs (train only; analytic, the same formula in torch_memory_step.py), per token:
//   N_mm = L * 12 C^2 + V C                   the matrix products' weights (tied head V C)
//   fwd  = 2 N_mm + 6 L C^2 M / T + 4 L (T + M) C
//          (qkv also projects the M memory rows, once per segment; scores and A V count the
//           full T x (M + T), masked part included); train = 3 fwd.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "models/zoo.h"
#include "optim/adam.h"

using namespace tz;
using bench::median;
using bench::seconds_since;

namespace {

struct Args {
  std::string mode = "train", out;
  int threads = 1;
  int64_t mem = 256, batch = 8, history = 1024, gen_tokens = 256;
  int reps = 5, warmup = 1;
};

Args parse(int argc, char** argv) {
  Args a;
  bench::Flags flags("memory_step",
                     "--mode train|decode --mem M --threads N [--batch B] [--reps R] [--warmup W] [--history H] "
                     "[--gen-tokens G] [--json]\n       memory_step --mode check --mem M --out FILE.safetensors");
  flags.word("--mode", a.mode, {"train", "decode", "check"})
      .whole("--threads", a.threads, 1)
      .whole("--mem", a.mem, 0)
      .whole("--batch", a.batch, 1)
      .whole("--reps", a.reps, 1)
      .whole("--warmup", a.warmup, 0)
      .whole("--history", a.history, 1)
      .whole("--gen-tokens", a.gen_tokens, 1)
      .word("--out", a.out)
      .accept("--json");  // the output is always one JSON object
  flags.parse(argc, argv);
  if (a.mode == "check" && a.out.empty()) flags.fail("--mode check needs --out FILE");
  return a;
}

int64_t argmax_last(const Tensor& logits) {  // logits [1, t, V] → argmax of the last row
  const int64_t t = logits.size(1), V = logits.size(2);
  const std::vector<float> row = logits.narrow(1, t - 1, 1).contiguous().to_vector<float>();
  return int64_t(std::max_element(row.begin(), row.begin() + V) - row.begin());
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  set_num_threads(a.threads);
  const int64_t T = 256, V = 256, C = 256, L = 4;
  const bool decode = a.mode == "decode";
  // The plain decoder's context covers the whole history; the segment model's is one segment.
  const int64_t context = decode && a.mem == 0 ? a.history + a.gen_tokens : T;
  const std::string config =
      "{\"vocab\": 256, \"dim\": 256, \"depth\": 4, \"heads\": 4, \"context\": " + std::to_string(context) +
      ", \"pos\": \"none\", \"mem_len\": " + std::to_string(a.mem) + "}";
  Generator init_gen(1234);
  std::unique_ptr<models::LM> model = zoo::make_lm(config, init_gen);
  const int64_t params = model->num_parameters();

  std::vector<double> times;
  double check = 0, flops = 0, work_tokens = 0;
  Generator data_gen(42);
  if (a.mode == "check") {
    model->eval();
    NoGradGuard no_grad;
    Tensor ids = randint(0, V, {2, 3 * T}, data_gen);
    models::Model::State memory;
    if (a.mem > 0) memory = model->make_memory(2);
    std::vector<Tensor> logits;
    for (int64_t s = 0; s < 3; ++s)
      logits.push_back(model->forward(ids.narrow(1, s * T, T).contiguous(), a.mem > 0 ? &memory : nullptr));
    std::map<std::string, Tensor> out{{"ids", ids}, {"logits", cat(logits, 1)}};
    for (auto& [name, t] : model->named_parameters()) out.emplace("param." + name, t);
    save_safetensors(a.out, out, {{"config", config}});
    std::printf("{\"framework\":\"tensorzoo\",\"mode\":\"check\",\"mem\":%lld,\"out\":\"%s\"}\n", (long long)a.mem,
                a.out.c_str());
    return 0;
  }
  if (!decode) {
    const int64_t B = a.batch, steps = a.warmup + a.reps;
    Tensor stream = randint(0, V, {B, steps * T + 1}, data_gen);  // step i reads segment i
    model->train();
    optim::AdamW opt(optim::decay_groups(model->named_parameters(), 0.1), optim::AdamWOptions{.lr = 3e-4});
    models::Model::State memory;
    if (a.mem > 0) memory = model->make_memory(B);
    for (int64_t i = 0; i < steps; ++i) {
      Tensor ids = stream.narrow(1, i * T, T).contiguous();
      Tensor targets = stream.narrow(1, i * T + 1, T).contiguous();
      auto t0 = std::chrono::steady_clock::now();
      opt.zero_grad();
      Tensor loss = a.mem > 0 ? model->loss(models::Model::Batch{{ids}, targets}, memory) : model->loss(ids, targets);
      loss.backward();
      opt.step();
      const double s = seconds_since(t0);
      if (i == 0) check = loss.item();
      if (i >= a.warmup) times.push_back(s);
    }
    const double n_mm = double(L * 12 * C * C + V * C), M = double(a.mem);
    const double fwd = 2 * n_mm + 6 * double(L * C * C) * M / double(T) + 4 * double(L) * (double(T) + M) * double(C);
    work_tokens = double(B * T);
    flops = 3 * fwd * work_tokens;
  } else {
    model->eval();
    NoGradGuard no_grad;
    const std::vector<int64_t> history = randint(0, V, {a.history}, data_gen).to_vector<int64_t>();
    models::Model::State state = model->make_state(1, a.history + a.gen_tokens);
    Tensor logits;
    for (int64_t t = 0; t < a.history; t += T) {
      const int64_t n = std::min(T, a.history - t);
      std::vector<int64_t> chunk(history.begin() + t, history.begin() + t + n);
      logits = model->step(from_vector(chunk, {1, n}), state);
    }
    const int64_t first = argmax_last(logits);
    const std::map<std::string, Tensor> saved = models::save_model_state(state);
    for (int rep = 0; rep < a.warmup + a.reps; ++rep) {
      // Into a fresh state: the segment memory's tensors change shape as decoding goes on.
      state = model->make_state(1, a.history + a.gen_tokens);
      restore_model_state(state, saved);
      int64_t token = first, sum = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t g = 0; g < a.gen_tokens; ++g) {
        token = argmax_last(model->step(from_vector(std::vector<int64_t>{token}, {1, 1}), state));
        sum += token;
      }
      const double s = seconds_since(t0);
      if (rep == 0) check = double(sum);
      if (rep >= a.warmup) times.push_back(s);
    }
    work_tokens = double(a.gen_tokens);
  }

  const double med = median(times);
  std::printf(
      "{\"framework\":\"tensorzoo\",\"mode\":\"%s\",\"mem\":%lld,\"threads\":%d,\"T\":%lld,\"batch\":%lld,"
      "\"history\":%lld,\"gen_tokens\":%lld,\"params\":%lld,\"reps\":%zu,\"median_ms\":%.3f,\"min_ms\":%.3f,"
      "\"tokens_per_s\":%.1f,\"ms_per_token\":%.4f,\"flops\":%.6e,\"gflops\":%.2f,\"check\":%.6g,"
      "\"omp_wait_policy\":\"%s\"}\n",
      a.mode.c_str(), (long long)a.mem, a.threads, (long long)T, (long long)(decode ? 1 : a.batch),
      (long long)(decode ? a.history : 0), (long long)(decode ? a.gen_tokens : 0), (long long)params, times.size(),
      med * 1e3, *std::min_element(times.begin(), times.end()) * 1e3, work_tokens / med, med * 1e3 / work_tokens, flops,
      flops / med / 1e9, check, std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "");
  return 0;
}
