// The training recipe (see recipe.h).
#include "optim/recipe.h"

#include <algorithm>
#include <cmath>

#include "optim/schedule.h"

namespace tz::optim {

void Recipe::validate() const {
  TZ_CHECK(std::isfinite(lr) && lr > 0, "recipe: lr must be finite and > 0, got ", lr);
  TZ_CHECK(std::isfinite(min_lr) && min_lr >= 0 && min_lr <= lr, "recipe: need 0 <= min_lr <= lr, got min_lr ", min_lr,
           " and lr ", lr);
  TZ_CHECK(warmup >= 0, "recipe: warmup must be >= 0, got ", warmup);
  TZ_CHECK(plan_steps >= 0, "recipe: plan_steps must be >= 0 (0 = the run's steps), got ", plan_steps);
  TZ_CHECK(schedule == "constant" || schedule == "cosine", "recipe: unknown schedule '", schedule,
           "'; valid: constant, cosine");
  TZ_CHECK(std::isfinite(weight_decay) && weight_decay >= 0, "recipe: weight_decay must be finite and >= 0, got ",
           weight_decay);
  TZ_CHECK(betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1, "recipe: betas must be in [0, 1), got ",
           betas[0], " and ", betas[1]);
  TZ_CHECK(std::isfinite(eps) && eps > 0, "recipe: eps must be finite and > 0, got ", eps);
  TZ_CHECK(std::isfinite(grad_clip) && grad_clip >= 0, "recipe: grad_clip must be finite and >= 0 (0 = off), got ",
           grad_clip);
}

double Recipe::lr_at(int64_t step, int64_t total_steps) const {
  TZ_CHECK(total_steps > 0, "recipe: a run needs at least one step, got ", total_steps);
  if (plan_steps > 0) {
    total_steps = plan_steps;
    step = std::min(step, plan_steps - 1);
  }
  const int64_t w = std::min(warmup, total_steps);
  if (schedule == "constant") return warmup_constant(step, w, lr);
  TZ_CHECK(schedule == "cosine", "recipe: unknown schedule '", schedule, "'; valid: constant, cosine");
  return warmup_cosine(step, w, total_steps, lr, min_lr);
}

std::unique_ptr<AdamW> Recipe::make_optimizer(const std::vector<std::pair<std::string, Tensor>>& named) const {
  validate();
  return std::make_unique<AdamW>(decay_groups(named, weight_decay), AdamWOptions{.lr = lr, .betas = betas, .eps = eps});
}

}  // namespace tz::optim
