// lm_throughput: whole language models of one size with different mixers, against
// tensorzoo's own GPT in the same run: training tokens per second (forward + backward of the
// LM loss, batch x T = --tokens) at each T, and decoding milliseconds per token after a
// history of H tokens. Softmax attention costs O(T) per token and keeps a KV cache that
// grows with H; linear attention, gated RNNs, SSMs and long convolutions should overtake it
// as T grows and decode in time independent of H. One JSON line per measurement:
//   {"model": id, "what": "train", "T": .., "threads": .., "tokens_per_s": .., "ms": ..}
//   {"model": id, "what": "decode", "history": .., "threads": .., "ms_per_token": ..}
//
//   lm_throughput --models gpt,gla,retnet,mamba,hyena [--T 256,1024,4096] [--decode 256,1024,4096]
//                 [--tokens 8192] [--reps 2] [--threads 1] [--dim 256] [--depth 4] [--heads 4]
//
// Model: {"dim": 256, "depth": 4, "heads": 4, "vocab": 256, "context": max T and history + 64,
// "mixer": id} ("gpt": the default softmax attention). Inputs: uniform random bytes. Times:
// the least of --reps after a warm-up. Decoding: a prefill of H tokens in one call, then 32
// steps of one token each, timed together.
#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "core/parallel.h"
#include "core/random.h"
#include "models/zoo.h"

using namespace tz;

namespace {
struct Args {
  std::string models = "gpt,gla,retnet,mamba,hyena";
  std::vector<int64_t> Ts{256, 1024, 4096}, histories{256, 1024, 4096};
  int64_t tokens = 8192, dim = 256, depth = 4, heads = 4;
  int reps = 2, threads = 1;
};

std::unique_ptr<models::LM> build(const Args& a, const std::string& id, int64_t context) {
  std::string json = cat_str(R"({"dim": )", a.dim, R"(, "depth": )", a.depth, R"(, "heads": )", a.heads,
                             R"(, "vocab": 256, "context": )", context);
  if (id != "gpt") json += cat_str(R"(, "mixer": ")", id, R"(")");
  Generator gen(1);
  return zoo::make_lm(json + "}", gen);
}

double least_seconds(int reps, const std::function<void()>& fn) {
  double best = 1e300;
  for (int r = 0; r <= reps; ++r) {  // r = 0: warm-up
    auto t0 = std::chrono::steady_clock::now();
    fn();
    if (r > 0) best = std::min(best, bench::seconds_since(t0));
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  Args a;
  bench::Flags flags("lm_throughput",
                     "[--models gpt,gla,...] [--T T,T,...] [--decode H,H,...] [--tokens N] [--reps R] [--threads N] "
                     "[--dim D] [--depth L] [--heads H]");
  flags.word("--models", a.models)
      .list("--T", a.Ts)
      .list("--decode", a.histories)
      .whole("--tokens", a.tokens, 1)
      .whole("--reps", a.reps, 1)
      .whole("--threads", a.threads, 1)
      .whole("--dim", a.dim, 1)
      .whole("--depth", a.depth, 1)
      .whole("--heads", a.heads, 1);
  flags.parse(argc, argv);
  set_num_threads(a.threads);
  int64_t context = 64;
  for (int64_t T : a.Ts) context = std::max(context, T);
  for (int64_t H : a.histories) context = std::max(context, H + 64);
  std::stringstream ids(a.models);
  for (std::string id; std::getline(ids, id, ',');) {
    std::unique_ptr<models::LM> model;
    try {
      model = build(a, id, context);
    } catch (const Error& e) {
      flags.fail(cat_str("--models: '", id, "': ", e.what()));
    }
    for (int64_t T : a.Ts) {
      const int64_t B = std::max<int64_t>(1, a.tokens / T);
      Generator gen(2);
      Tensor x = randint(0, 256, {B, T + 1}, gen);
      Tensor in = x.narrow(1, 0, T).contiguous(), target = x.narrow(1, 1, T).contiguous();
      model->train();
      const double s = least_seconds(a.reps, [&] {
        model->zero_grad();
        model->loss({in}, target).backward();
      });
      std::printf(
          "{\"model\": \"%s\", \"what\": \"train\", \"T\": %lld, \"threads\": %d, \"tokens_per_s\": %.0f, \"ms\": "
          "%.2f}\n",
          id.c_str(), (long long)T, a.threads, double(B * T) / s, s * 1e3);
      std::fflush(stdout);
    }
    NoGradGuard no_grad;
    model->eval();
    for (int64_t H : a.histories) {
      if (!model->has_step()) {
        std::fprintf(stderr, "lm_throughput: %s has no decoding step: %s\n", id.c_str(), model->why_no_step().c_str());
        break;
      }
      constexpr int64_t kSteps = 32;
      Generator gen(3);
      Tensor prompt = randint(0, 256, {1, H}, gen), next = randint(0, 256, {1, 1}, gen);
      double best = 1e300;
      for (int r = 0; r <= a.reps; ++r) {
        models::Model::State state = model->make_state(1, H + kSteps);
        model->forward({prompt}, &state);
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t k = 0; k < kSteps; ++k) model->forward({next}, &state);
        if (r > 0) best = std::min(best, bench::seconds_since(t0));
      }
      std::printf(
          "{\"model\": \"%s\", \"what\": \"decode\", \"history\": %lld, \"threads\": %d, \"ms_per_token\": %.3f}\n",
          id.c_str(), (long long)H, a.threads, best * 1e3 / double(kSteps));
      std::fflush(stdout);
    }
  }
  return 0;
}
