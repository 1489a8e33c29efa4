// Proof of PoolFormer's causal pooling mixer in the MetaFormer block (nn/ffn/poolformer.h):
// metaformer.
#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "data/grammar.h"
#include "data/text_dataset.h"
#include "models/zoo.h"
#include "nn/ffn/poolformer.h"
#include "optim/adam.h"
#include "optim/optim.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
// y_t = mean of x_s over the window ending at t, minus x_t: plain loops, f64.
Tensor pool_reference(const Tensor& x, int64_t window) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  std::vector<double> xv = x.to(DType::f64).contiguous().to_vector<double>(), y(xv.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t first = window == 0 ? 0 : std::max<int64_t>(0, t - window + 1);
      for (int64_t c = 0; c < C; ++c) {
        double sum = 0;
        for (int64_t s = first; s <= t; ++s) sum += xv[size_t((b * T + s) * C + c)];
        y[size_t((b * T + t) * C + c)] = sum / double(t - first + 1) - xv[size_t((b * T + t) * C + c)];
      }
    }
  return from_vector(y, {B, T, C});
}

}  // namespace

namespace tz::testing {
// (tests/zoo/proofs.h) Validation loss after `steps` AdamW steps on the built-in grammar text (bytes).
double grammar_text_loss(const std::string& extra, int steps) {
  static const data::TextDataset ds = data::TextDataset::from_string(data::grammar_text(60000, 5), {.seq_len = 32});
  Generator gen(1);
  auto m = zoo::make_lm(
      std::string(R"({"vocab": 256, "dim": 32, "heads": 2, "depth": 2, "context": 32, )") + extra + "}", gen);
  optim::AdamW opt(m->named_parameters(), {.lr = 3e-3, .weight_decay = 0.0});
  Generator batches(2);
  for (int s = 0; s < steps; ++s) {
    data::Batch b = ds.sample(data::Split::train, 16, 32, batches);
    Tensor l = m->loss(b.inputs, b.targets);
    opt.zero_grad();
    l.backward();
    opt.step();
  }
  m->eval();
  NoGradGuard ng;
  Generator held(3);
  double loss = 0;
  for (int i = 0; i < 4; ++i) {
    data::Batch b = ds.sample(data::Split::val, 32, 32, held);
    loss += m->loss(b.inputs, b.targets).item() / 4;
  }
  return loss;
}
}  // namespace tz::testing

TZ_PROOF(metaformer, "pool minus identity equals its loops and is causal. On text it beats an FFN-only stack") {
  Generator g(7);
  Tensor x = randn({2, 13, 5}, g, DType::f64);
  for (int64_t w : {0, 1, 3, 20}) {
    nn::PoolFormerMixer pool(5, w);
    const double d = testing::max_abs_diff(pool.forward(x, {}), pool_reference(x, w));
    // Token by token from a state, and in chunks of 4 and 9 positions.
    auto st = pool.make_state(2, 13, DType::f64);
    std::vector<Tensor> steps;
    for (int64_t t = 0; t < 13; ++t) steps.push_back(pool.forward(x.narrow(1, t, 1), {.start = t}, st.get()));
    auto st2 = pool.make_state(2, 13, DType::f64);
    Tensor a = pool.forward(x.narrow(1, 0, 4), {.start = 0}, st2.get());
    Tensor b = pool.forward(x.narrow(1, 4, 9), {.start = 4}, st2.get());
    const double step = testing::max_abs_diff(cat(steps, 1), pool_reference(x, w));
    const double chunks = testing::max_abs_diff(cat({a, b}, 1), pool_reference(x, w));
    // Causal: changing positions after 6 leaves outputs 0..6 exactly as they were.
    Tensor x2 = x.clone();
    {
      NoGradGuard ng;
      core::copy_(x2.narrow(1, 7, 6), randn({2, 6, 5}, g, DType::f64));
    }
    const double moved =
        testing::max_abs_diff(pool.forward(x2, {}).narrow(1, 0, 7), pool.forward(x, {}).narrow(1, 0, 7));
    MESSAGE("pool_window ", w, ": vs loops ", d, ", token by token ", step, ", chunks 4+9 ", chunks,
            ", prefix moved by a changed suffix ", moved);
    CHECK(d < 1e-14);
    CHECK(step < 1e-14);
    CHECK(chunks < 1e-14);
    CHECK(moved == 0.0);
  }
  // w = 1 pools one position: the mixer is zero (up to the prefix sums' rounding).
  CHECK(testing::max_abs_diff(nn::PoolFormerMixer(5, 1).forward(x, {}), zeros({2, 13, 5}, DType::f64)) < 1e-14);

  // The paper's claim in LM form: the parameter-free mixer carries context. Two blocks on the
  // grammar text, 300 steps: pooling mixers against the same FFNs with no mixer (layout "ff",
  // which sees one byte) and against attention.
  if (!testing::learning_runs()) return;  // 900 training steps: the release pass's
  const double ffn_only = testing::grammar_text_loss(R"("layout": "ff")", 300);
  const double pooled = testing::grammar_text_loss(R"("mixer": "metaformer")", 300);
  const double pooled_all = testing::grammar_text_loss(R"("mixer": "metaformer", "pool_window": 0)", 300);
  const double attention = testing::grammar_text_loss(R"("mixer": "vanilla_mha")", 300);
  MESSAGE("grammar text, validation loss after 300 steps (nats/byte): FFN only ", ffn_only, ", PoolFormer w 3 ", pooled,
          ", PoolFormer over all the past ", pooled_all, ", attention ", attention);
  TZ_PROOF_NUMBER("val loss FFN-only minus PoolFormer", ffn_only - pooled);
  CHECK(pooled < ffn_only - 0.05);
}
