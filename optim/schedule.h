// Learning-rate schedules: lr as a function of the step (0, 1, 2, ...). Use before each
// optimizer step:  opt.set_lr(schedule.lr_at(opt.step_count()));  opt.step();
#pragma once

#include <cstdint>

namespace tz::optim {

// The same lr at every step.
class ConstantLR {
 public:
  explicit ConstantLR(double lr);
  double lr_at(int64_t step) const;

 private:
  double lr_;
};

// Linear warm-up, then cosine decay (as in GPT-3 / nanoGPT training; cosine decay from
// Loshchilov & Hutter, "SGDR", arXiv:1608.03983, without restarts):
//   step <  warmup_steps:  max_lr * step / warmup_steps        (0 at step 0)
//   step <= total_steps:   min_lr + (max_lr - min_lr) * (1 + cos(pi * r)) / 2,
//                          r = (step - warmup_steps) / (total_steps - warmup_steps)
//   step >  total_steps:   min_lr
// Needs 0 <= warmup_steps <= total_steps, 0 <= min_lr <= max_lr.
class WarmupCosine {
 public:
  WarmupCosine(int64_t warmup_steps, int64_t total_steps, double max_lr, double min_lr);
  double lr_at(int64_t step) const;

 private:
  int64_t warmup_, total_;
  double max_lr_, min_lr_;
};

// Linear warm-up to a constant lr, counting the step being taken, so that the first update
// is not spent at lr 0 (a short run, such as the zoo's learning check, has no step to lose):
//   step <  warmup_steps:  lr * (step + 1) / warmup_steps       (lr / warmup_steps at step 0)
//   step >= warmup_steps:  lr
double warmup_constant(int64_t step, int64_t warmup_steps, double lr);

// The same, as functions (they check their arguments on every call).
double constant(int64_t step, double lr);
double warmup_cosine(int64_t step, int64_t warmup_steps, int64_t total_steps, double max_lr, double min_lr);

}  // namespace tz::optim
