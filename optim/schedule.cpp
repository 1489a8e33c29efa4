// Learning-rate schedules (formulas in schedule.h).
#include "optim/schedule.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tz::optim {

ConstantLR::ConstantLR(double lr) : lr_(lr) {
  TZ_CHECK(lr >= 0 && std::isfinite(lr), "ConstantLR: lr must be finite and >= 0, got ", lr);
}

double ConstantLR::lr_at(int64_t step) const {
  TZ_CHECK(step >= 0, "ConstantLR.lr_at: step must be >= 0, got ", step);
  return lr_;
}

WarmupCosine::WarmupCosine(int64_t warmup_steps, int64_t total_steps, double max_lr, double min_lr)
    : warmup_(warmup_steps), total_(total_steps), max_lr_(max_lr), min_lr_(min_lr) {
  TZ_CHECK(warmup_steps >= 0, "warmup_cosine: warmup_steps must be >= 0, got ", warmup_steps);
  TZ_CHECK(total_steps >= warmup_steps, "warmup_cosine: total_steps (", total_steps, ") must be >= warmup_steps (",
           warmup_steps, ")");
  TZ_CHECK(std::isfinite(max_lr) && std::isfinite(min_lr) && min_lr >= 0 && min_lr <= max_lr,
           "warmup_cosine: need 0 <= min_lr <= max_lr, got min_lr ", min_lr, ", max_lr ", max_lr);
}

double WarmupCosine::lr_at(int64_t step) const {
  TZ_CHECK(step >= 0, "warmup_cosine: step must be >= 0, got ", step);
  if (step < warmup_) return max_lr_ * double(step) / double(warmup_);  // linear warm-up
  if (step >= total_) return min_lr_;                                   // after the end
  double r = double(step - warmup_) / double(total_ - warmup_);         // 0 .. 1
  return min_lr_ + (max_lr_ - min_lr_) * 0.5 * (1 + std::cos(std::numbers::pi * r));
}

double warmup_constant(int64_t step, int64_t warmup_steps, double lr) {
  TZ_CHECK(step >= 0 && warmup_steps >= 0, "warmup_constant: step and warmup_steps must be >= 0, got ", step, " and ",
           warmup_steps);
  TZ_CHECK(lr >= 0 && std::isfinite(lr), "warmup_constant: lr must be finite and >= 0, got ", lr);
  return step < warmup_steps ? lr * double(step + 1) / double(warmup_steps) : lr;
}

double constant(int64_t step, double lr) { return ConstantLR(lr).lr_at(step); }

double warmup_cosine(int64_t step, int64_t warmup_steps, int64_t total_steps, double max_lr, double min_lr) {
  return WarmupCosine(warmup_steps, total_steps, max_lr, min_lr).lr_at(step);
}

}  // namespace tz::optim
