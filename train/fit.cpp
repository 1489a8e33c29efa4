// The one training loop (see fit.h).
#include "train/fit.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "optim/clip.h"

namespace tz::train {

Fit::Fit(const std::vector<std::pair<std::string, Tensor>>& params, const FitOptions& options) : options_(options) {
  TZ_CHECK(options_.steps > 0, "fit: steps must be positive, got ", options_.steps);
  TZ_CHECK(options_.tokens_per_step >= 0, "fit: tokens_per_step must be >= 0, got ", options_.tokens_per_step);
  for (const auto& [name, p] : params) params_.push_back(p);
  optimizer_ = options_.recipe.make_optimizer(params);  // validates the recipe
}

namespace {
// "NaN", "Inf" or "-Inf" (printf would give "nan" or "-nan" by the sign bit).
std::string non_finite(double x) { return std::isnan(x) ? "NaN" : x > 0 ? "Inf" : "-Inf"; }
}  // namespace

void Fit::non_finite_step(StepRecord& r, const std::string& what, const std::string& facts) {
  if (options_.skip_nonfinite && skipped_in_row_ + 1 < kMaxSkipsInRow) {
    ++skipped_in_row_;
    r.skipped = true;
    return;
  }
  failed_step_ = r.step;
  const std::string row = skipped_in_row_ > 0 ? cat_str(", the ", skipped_in_row_ + 1, "th in a row") : "";
  throw Error(cat_str("fit: ", what, " at step ", r.step, " of ", options_.steps, " (", facts, row,
                      "); the run stops before this step's update, so the parameters are those after step ",
                      r.step - 1 - skipped_in_row_));
}

StepRecord Fit::step(const LossFn& loss) { return step(&loss, nullptr); }
StepRecord Fit::step_with_grads(const GradFn& grads) { return step(nullptr, &grads); }

StepRecord Fit::step(const LossFn* loss_fn, const GradFn* grads_fn) {
  TZ_CHECK(failed_step_ == 0, "fit: the run was stopped at step ", failed_step_,
           " by a NaN or Inf; it cannot take more steps");
  const auto t0 = std::chrono::steady_clock::now();
  Tensor loss = loss_fn ? (*loss_fn)() : Tensor();
  StepRecord r;
  r.step = steps_done_ + 1;
  r.loss = loss_fn ? loss.item() : (*grads_fn)();
  r.lr = options_.recipe.lr_at(steps_done_, options_.steps);
  if (!std::isfinite(r.loss)) non_finite_step(r, "the loss is " + non_finite(r.loss), cat_str("lr ", r.lr));
  if (!r.skipped) {
    if (loss_fn) {
      optimizer_->zero_grad();
      loss.backward();
    }
    // The norm is measured even without clipping (for the log); an infinite bound scales nothing.
    const double clip = options_.recipe.grad_clip;
    r.grad_norm = optim::clip_grad_norm(params_, clip > 0 ? clip : INFINITY);
    if (!std::isfinite(r.grad_norm))
      non_finite_step(r, "the gradient norm is " + non_finite(r.grad_norm), cat_str("loss ", r.loss, ", lr ", r.lr));
  }
  if (!r.skipped) {
    optimizer_->set_lr(r.lr);
    optimizer_->step();
    skipped_in_row_ = 0;
  }
  ++steps_done_;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  elapsed_s_ += r.seconds;
  r.elapsed_s = elapsed_s_;
  if (options_.tokens_per_step > 0) r.tokens_per_s = double(options_.tokens_per_step) / std::max(r.seconds, 1e-9);
  return r;
}

void Fit::run(const LossFn& loss, const Hooks& hooks) {
  run_steps([&] { return step(&loss, nullptr); }, hooks);
}
void Fit::run_with_grads(const GradFn& grads, const Hooks& hooks) {
  run_steps([&] { return step(nullptr, &grads); }, hooks);
}

void Fit::run_steps(const std::function<StepRecord()>& next_step, const Hooks& hooks) {
  TZ_CHECK(hooks.eval_every >= 0 && hooks.checkpoint_every >= 0 && hooks.checkpoint_after_s >= 0,
           "fit: eval_every, checkpoint_every and checkpoint_after_s must be >= 0 (0 = only at the end), got ",
           hooks.eval_every, ", ", hooks.checkpoint_every, " and ", hooks.checkpoint_after_s);
  const int64_t S = options_.steps;
  auto every = [](int64_t step, int64_t n) { return n > 0 && step % n == 0; };
  using Clock = std::chrono::steady_clock;
  auto last_save = Clock::now();
  auto due_by_time = [&] {
    return hooks.checkpoint_after_s > 0 &&
           std::chrono::duration<double>(Clock::now() - last_save).count() >= hooks.checkpoint_after_s;
  };
  int64_t saved_at = -1;
  while (steps_done_ < S) {
    StepRecord r = next_step();
    if (hooks.evaluate && (every(r.step, hooks.eval_every) || r.step == S)) r.val_loss = hooks.evaluate();
    const bool go_on = !hooks.on_step || hooks.on_step(r);
    if (hooks.checkpoint && (every(r.step, hooks.checkpoint_every) || due_by_time())) {
      hooks.checkpoint();
      saved_at = r.step;
      last_save = Clock::now();
    }
    if (!go_on) break;
  }
  if (hooks.checkpoint && saved_at != steps_done_) hooks.checkpoint();
}

void Fit::restore(const std::map<std::string, Tensor>& optimizer_state, int64_t steps_done, double elapsed_s) {
  TZ_CHECK(steps_done >= 0 && elapsed_s >= 0, "fit: restore needs steps_done >= 0 and elapsed_s >= 0, got ", steps_done,
           " and ", elapsed_s);
  optimizer_->load_state_dict(optimizer_state);
  steps_done_ = steps_done;
  elapsed_s_ = elapsed_s;
}

std::vector<StepRecord> fit(const std::vector<std::pair<std::string, Tensor>>& params, const LossFn& loss,
                            const FitOptions& options, const Hooks& hooks) {
  Fit f(params, options);
  std::vector<StepRecord> records;
  Hooks h = hooks;
  h.on_step = [&](const StepRecord& r) {
    records.push_back(r);
    return !hooks.on_step || hooks.on_step(r);
  };
  f.run(loss, h);
  return records;
}

}  // namespace tz::train
