// MoA's profile from a trained model (nn/sparse_attention/moa.h): a 2-layer, 4-head LM whose
// MoA spans cover the whole sequence (dense causal attention) is trained on copy (16 tokens
// copied 16 positions later), then profiled on calibration batches by the first-order loss
// change of masking each attention entry, and its per-(layer, head) rules planned under a
// density budget. Applied without retraining, within the same density budget, the planned rules
// give a lower held-out loss than every uniform rule (one span for all heads); the predicted
// loss change of single-head rules correlates with the measured one.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/random.h"
#include "data/tasks.h"
#include "models/zoo.h"
#include "nn/sparse_attention/moa.h"
#include "optim/adam.h"

using namespace tz;

namespace {
constexpr int64_t kT = 32, kLayers = 2, kHeads = 4;

double eval_loss(models::LM& m, const data::Batch& b) {
  NoGradGuard no_grad;
  return m.loss(b.inputs, b.targets).item();
}

void set_all(const std::vector<std::shared_ptr<nn::MoaAttention>>& layers, const std::vector<nn::MoaRule>& per_head) {
  for (size_t l = 0; l < layers.size(); ++l)
    layers[l]->set_rules({per_head.begin() + ptrdiff_t(l * kHeads), per_head.begin() + ptrdiff_t((l + 1) * kHeads)});
}
}  // namespace

TEST_CASE("moa profile: from a trained model's loss sensitivity, at equal density lower loss than uniform spans") {
  Generator gen(1);
  auto m = zoo::make_lm(R"({"vocab": 16, "dim": 32, "heads": 4, "depth": 2, "context": 32, "mixer": "moa", )"
                        R"("moa_alpha": [1000], "moa_beta": [0], "moa_initial": 0})",
                        gen);
  auto task = data::make_task("copy", {.vocab_size = 16, .seq_len = kT, .copy_len = 16});
  {
    optim::AdamW opt(m->named_parameters(), {.lr = 3e-3, .weight_decay = 0.0});
    Generator data_gen(2);
    for (int step = 0; step < 250; ++step) {  // about 2 s on one core
      data::Batch b = task->sample(32, data_gen);
      Tensor loss = m->loss(b.inputs, b.targets);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  Generator held_gen(3), calib_gen(4);
  const data::Batch held = task->sample(256, held_gen);
  const double dense = eval_loss(*m, held);
  MESSAGE("dense attention after training: held-out loss ", dense, ", accuracy ",
          data::accuracy(m->forward(held.inputs), held.targets));
  REQUIRE(dense < 0.5);  // the copy is learned: the profile reads a trained model

  // The influence profile on 4 calibration batches (not the held-out ones).
  std::vector<data::Batch> calib;
  for (int i = 0; i < 4; ++i) calib.push_back(task->sample(64, calib_gen));
  auto layers = nn::moa_layers(*m);
  REQUIRE(layers.size() == size_t(kLayers));
  const auto E = nn::moa_profile(
      *m, [&](int64_t b) { return m->loss(calib[size_t(b)].inputs, calib[size_t(b)].targets); }, 4);
  REQUIRE(E.size() == size_t(kLayers * kHeads));

  // The first-order prediction against the loss change measured on the same batches, for
  // three rules (span 2, span 8, span N/2) applied to one head at a time, the others dense.
  const std::vector<nn::MoaRule> candidates{{2, 0}, {4, 0}, {8, 0}, {16, 0}, {0, 0.25}, {0, 0.5}, {0, 0.75}, {1000, 0}};
  const std::vector<nn::MoaRule> full(size_t(kLayers * kHeads), {1000, 0});
  double sxy = 0, sxx = 0, syy = 0, sx = 0, sy = 0;
  int n = 0;
  for (size_t h = 0; h < size_t(kLayers * kHeads); ++h)
    for (const nn::MoaRule& r : {candidates[0], candidates[2], candidates[5]}) {
      std::vector<nn::MoaRule> one = full;
      one[h] = r;
      set_all(layers, one);
      double measured = 0;
      for (const auto& b : calib) measured += (eval_loss(*m, b) - dense) / double(calib.size());
      const double predicted = nn::moa_hidden_sum(E[h], kT, r, 0);
      sx += predicted, sy += measured, sxx += predicted * predicted, syy += measured * measured,
          sxy += predicted * measured, ++n;
    }
  // Pearson correlation of predicted and measured loss changes.
  const double corr = (sxy - sx * sy / n) / std::sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
  MESSAGE("influence vs measured loss change of 24 single-head rules: correlation ", corr);
  CHECK(corr > 0.8);

  // Uniform spans within the budget, then the plan at the best uniform rule's density.
  const int64_t pairs = kT * (kT + 1) / 2;
  const double budget = 0.55;
  double best_uniform = INFINITY, best_density = 0;
  std::string uniform_rows;
  for (const nn::MoaRule& r : candidates) {
    const double d = double(nn::moa_kept(kT, r, 0)) / double(pairs);
    if (d > budget) continue;
    set_all(layers, std::vector<nn::MoaRule>(size_t(kLayers * kHeads), r));
    const double l = eval_loss(*m, held);
    uniform_rows += cat_str("  ", r.alpha, " + ", r.beta, " N: density ", d, ", loss ", l, "\n");
    if (l < best_uniform) best_uniform = l, best_density = d;
  }
  const nn::MoaPlan plan = nn::moa_plan(E, kT, candidates, 0, budget);
  set_all(layers, plan.rules);
  const double profiled = eval_loss(*m, held);
  std::string spans;
  for (size_t h = 0; h < plan.rules.size(); ++h)
    spans += cat_str(h % kHeads ? ", " : (h ? "; layer 1: " : "layer 0: "), plan.rules[h].alpha, "+",
                     plan.rules[h].beta, "N");
  MESSAGE("uniform rules within density ", budget, ":\n", uniform_rows, "profiled plan (", spans, "): density ",
          plan.mean_density(), ", loss ", profiled);
  CHECK(plan.mean_density() <= budget + 1e-12);
  CHECK(profiled < best_uniform);
  CHECK(profiled < dense + 0.25);  // the plan keeps what the copy needs
  MESSAGE("held-out loss at mean density <= ", budget, ": dense ", dense, ", best uniform span ", best_uniform,
          " (density ", best_density, "), profiled ", profiled, " (density ", plan.mean_density(), ")");
  // Tighter budgets: the plan degrades gracefully.
  for (double b : {0.3, 0.2}) {
    const nn::MoaPlan p = nn::moa_plan(E, kT, candidates, 0, b);
    set_all(layers, p.rules);
    MESSAGE("budget ", b, ": profiled density ", p.mean_density(), ", held-out loss ", eval_loss(*m, held));
  }
}
