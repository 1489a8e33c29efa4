// linear_attention_step: milliseconds of one forward + backward of the linear attention op
// (autograd/ops.h, kernel core/kernels/linear_attention.h), of the delta rule (kernel
// core/kernels/delta_rule.h), f32, chunked forms, chunk 64, and of TTT-Linear's dual form
// over mini-batches of 16 (the fused op, kernel core/kernels/ttt.h): the same work as
// bench/torch_linear_attention.py measures in PyTorch. Wall time, the least of --reps after a
// warm-up (the least disturbed on a shared machine). One JSON line per (layout, T):
//   {"impl": "tensorzoo", "layout": "head"|"channel"|"delta"|"ttt", "T": .., "threads": .., "ms": ..,
//    "fwd_ms": .., "gflop": ..}
//
//   linear_attention_step --threads N [--T 256,1024,4096] [--reps R] [--layouts head,channel,delta,ttt]
//
// Sizes: B 8, H 4, Dk = Dv = 64 (D 64). Inputs: q, k ~ N(0, 1/D), v ~ N(0, 1), log-decays
// uniform in [-0.1, -0.01] (per head and step, or per key channel), out's gradient ~ N(0, 1);
// the delta rule: k rows of unit length (as DeltaNet normalises them), beta uniform in
// [0.1, 0.9]. FLOPs counted (the matrix products of the chunked algorithm, triangles not
// halved), GFLOP = 3 x forward: linear attention per token 2 C (Dk + Dv) + 4 Dk Dv; the delta
// rule per token 2 C (2 Dk + 2 Dv) + 6 Dk Dv (K K^T, Tm R, K S_0, Q K^T, P U, Q S_0, K^T U).
// TTT: q, k, v ~ N(0, 1), eta uniform in [0, 1/D], W0 ~ N(0, 0.02^2), b0 = 0, the LayerNorm's
// weight 1 and bias 0, all of them leaves of the outer gradient; per token 6 D^2 + 4 b D
// (k W0, q W, k^T G; q k^T and its product with G over a mini-batch of b).
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/random.h"

using namespace tz;

int main(int argc, char** argv) {
  int threads = 1, reps = 3;
  std::vector<int64_t> Ts{256, 1024, 4096};
  std::string layouts = "head,channel,delta,ttt";
  bench::Flags flags("linear_attention_step",
                     "--threads N [--T T,T,...] [--reps R] [--layouts head,channel,delta,ttt]");
  flags.whole("--threads", threads, 1).whole("--reps", reps, 1).list("--T", Ts).word("--layouts", layouts);
  flags.parse(argc, argv);
  set_num_threads(threads);
  const int64_t B = 8, H = 4, D = 64, C = 64, MB = 16;
  // Forward + backward, the least of `reps` after a warm-up; one JSON line.
  auto measure = [&](const std::string& layout, int64_t T, double per_token, const std::vector<Tensor*>& leaves,
                     const std::function<Tensor()>& forward, const Tensor& go) {
    std::vector<double> total, fwd;
    for (int r = 0; r <= reps; ++r) {  // r = 0: warm-up
      for (Tensor* t : leaves) t->zero_grad();
      auto t0 = std::chrono::steady_clock::now();
      Tensor out = forward();
      const double f = bench::seconds_since(t0);
      out.backward(go);
      const double all = bench::seconds_since(t0);
      if (r > 0) {
        total.push_back(all * 1e3);
        fwd.push_back(f * 1e3);
      }
    }
    std::printf(
        "{\"impl\": \"tensorzoo\", \"layout\": \"%s\", \"T\": %lld, \"threads\": %d, \"ms\": %.3f, \"fwd_ms\": %.3f, "
        "\"gflop\": %.4f}\n",
        layout.c_str(), (long long)T, threads, *std::min_element(total.begin(), total.end()),
        *std::min_element(fwd.begin(), fwd.end()), 3.0 * double(B * H * T) * per_token * 1e-9);
    std::fflush(stdout);
  };
  const std::vector<std::string> chosen = bench::split(layouts);
  for (const std::string& l : chosen)
    if (l != "head" && l != "channel" && l != "delta" && l != "ttt")
      flags.fail(cat_str("--layouts: '", l, "' is not one of head, channel, delta, ttt"));
  auto wanted = [&](const std::string& l) { return std::find(chosen.begin(), chosen.end(), l) != chosen.end(); };
  for (const std::string layout : {"head", "channel", "delta"}) {
    if (!wanted(layout)) continue;
    const bool delta = layout == "delta";
    for (int64_t T : Ts) {
      Generator gen(1);
      Tensor q = (randn({B, H, T, D}, gen) * (1.0 / 8)).detach().requires_grad_();
      Tensor k = randn({B, H, T, D}, gen);
      k = (delta ? k / sqrt(sum(k * k, {3}, true)) : k * (1.0 / 8)).detach().requires_grad_();
      Tensor v = randn({B, H, T, D}, gen).requires_grad_();
      Tensor g = delta ? rand({B, H, T}, gen, DType::f32, 0.1, 0.9).requires_grad_()
                       : rand(layout == "head" ? Shape{B, H, T} : Shape{B, H, T, D}, gen, DType::f32, -0.1, -0.01)
                             .requires_grad_();
      Tensor go = randn({B, H, T, D}, gen);
      measure(
          layout, T, delta ? double(2 * C * (2 * D + 2 * D) + 6 * D * D) : double(2 * C * (D + D) + 4 * D * D),
          {&q, &k, &v, &g},
          [&] {
            return delta ? delta_rule(q, k, v, g, {.chunk = C}).out
                         : linear_attention(q, k, v, {.log_decay = g, .chunk = C}).out;
          },
          go);
    }
  }
  if (wanted("ttt")) {
    for (int64_t T : Ts) {
      Generator gen(1);
      Tensor q = randn({B, H, T, D}, gen).requires_grad_(), k = randn({B, H, T, D}, gen).requires_grad_(),
             v = randn({B, H, T, D}, gen).requires_grad_();
      Tensor eta = rand({B, H, T, 1}, gen, DType::f32, 0.0, 1.0 / double(D)).requires_grad_();
      Tensor W0 = (randn({1, H, D, D}, gen) * 0.02).detach().requires_grad_(),
             b0 = zeros({1, H, 1, D}).requires_grad_();
      Tensor lw = ones({1, H, 1, D}).requires_grad_(), lb = zeros({1, H, 1, D}).requires_grad_();
      Tensor go = randn({B, H, T, D}, gen);
      measure(
          "ttt", T, double(6 * D * D + 4 * MB * D), {&q, &k, &v, &eta, &W0, &b0, &lw, &lb},
          [&] {
            return ttt_linear({q, k, v, eta, W0, b0, lw, lb, MB}).z;
          },
          go);
    }
  }
  return 0;
}
