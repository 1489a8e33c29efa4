// The training recipe: the optimizer, its learning-rate schedule and gradient clipping, as one
// options table. `tensorzoo train`, the arena, the zoo's learning check and the tests all
// build their optimizer from it (through train/fit.h), so a setting means the same thing
// everywhere.
//
// The optimizer is AdamW (adam.h) over the GPT-2 parameter groups of decay_groups
// (optimizer.h): matrices decay by weight_decay, biases, norm weights and embeddings do not.
// The learning rate at step s (0, 1, ...) of a run of S steps, with w = min(warmup, S)
// (a warm-up longer than the run is shortened to it):
//   "constant":  warmup_constant(s, w, lr)           lr (s + 1) / w while s < w, then lr
//   "cosine":    warmup_cosine(s, w, S, lr, min_lr)  lr s / w while s < w, then cosine to min_lr
// (formulas in schedule.h). With plan_steps P > 0 the schedule is the one planned for P
// steps whatever the run's length, and steps s >= P keep its last rate, lr_at(P - 1, P): a
// resumed run extended past its plan continues on the decayed tail instead of re-planning
// (which would jump back up the cosine). Gradients are clipped to a global norm of grad_clip
// (clip.h) before the update.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "optim/adam.h"

namespace tz::optim {

struct Recipe {
  double lr = 1e-3;                            // peak learning rate
  double min_lr = 0.0;                         // "cosine": the rate at the last step
  int64_t warmup = 0;                          // linear warm-up steps
  std::string schedule = "constant";           // constant | cosine
  double weight_decay = 0.0;                   // AdamW's decoupled decay of the matrices
  std::array<double, 2> betas = {0.9, 0.999};  // AdamW's moment decay rates
  double eps = 1e-8;                           // AdamW's denominator guard
  double grad_clip = 0.0;                      // max global gradient norm; 0 = no clipping
  int64_t plan_steps = 0;                      // > 0: the steps the schedule is planned over

  // Throws tz::Error naming the first bad option and the valid range or choices.
  void validate() const;
  // The learning rate of step `step` (0-based) in a run of `total_steps` steps.
  double lr_at(int64_t step, int64_t total_steps) const;
  // AdamW over `named` (in decay groups), set up with this recipe's options.
  std::unique_ptr<AdamW> make_optimizer(const std::vector<std::pair<std::string, Tensor>>& named) const;
};

}  // namespace tz::optim
