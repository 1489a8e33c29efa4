// fit: the one training loop. `tensorzoo train` (trainer.h), the arena (arena.h), the zoo's
// learning check (conformance.h) and the tests all train through it.
//
// The caller gives the parameters, a loss function (it samples the next batch and runs the
// forward; batch_loss() makes one from a model and a batch source), the number of steps and
// the recipe (optim/recipe.h: lr, schedule, warm-up, weight decay, betas, clipping). Step s
// (0-based; records and messages count from 1) of a run of S steps:
//   loss = loss_fn()                          stop if it is NaN or Inf
//   zero_grad; loss.backward()
//   norm = ||grad||, clipped to grad_clip     stop if it is NaN or Inf
//   AdamW update at lr = recipe.lr_at(s, S)
// (run_with_grads: a GradFn makes the loss and the gradients in one call, e.g. averaged
// over ranks; the checks are the same.)
// A stop throws tz::Error naming the step. It comes before that step's update, so the
// parameters are still those of the previous step, and the Fit refuses to go on. With
// skip_nonfinite the step is skipped instead (no update; StepRecord::skipped), unless
// kMaxSkipsInRow steps in a row were skipped: then it stops as above. The run's
// checkpoint hook is never called after a stop, so a broken run cannot overwrite a good
// checkpoint (the trainer also refuses to save non-finite tensors).
//
// run() steps to the end and calls the hooks after each step, in this order:
//   evaluate    after steps that are multiples of eval_every, and after the last step;
//               fills StepRecord::val_loss
//   on_step     logging and progress; returning false stops the run early
//   checkpoint  after multiples of checkpoint_every, after a step that ends checkpoint_after_s
//               seconds or more after the last save (or the start), and once when run()
//               returns (finished or stopped early), unless that step was just saved
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "data/batch.h"
#include "optim/recipe.h"

namespace tz::train {

// The loss of the next batch: a one-element tensor that requires grad.
using LossFn = std::function<Tensor()>;
// A step's loss and gradients computed by the caller: it sets every parameter's .grad and
// returns the loss (data-parallel training, train/distributed.h, where the gradients are
// averaged over ranks). The loss is checked after the gradients are made, not before.
using GradFn = std::function<double()>;

// The loss of `model` (anything with loss(inputs, targets)) on the batches `next_batch` gives.
// The model is held by reference: it must outlive the function.
template <class Model>
LossFn batch_loss(Model& model, std::function<data::Batch()> next_batch) {
  return [&model, next = std::move(next_batch)] {
    data::Batch b = next();
    return model.loss(b.inputs, b.targets);
  };
}

struct FitOptions {
  int64_t steps = 0;            // steps of the whole run (the schedule is planned over them)
  optim::Recipe recipe;         // optimizer, schedule, clipping
  int64_t tokens_per_step = 0;  // tokens in a batch, for StepRecord::tokens_per_s (0: not reported)
  bool skip_nonfinite = false;  // skip a step whose loss or gradient is NaN or Inf instead of stopping
};

constexpr int64_t kMaxSkipsInRow = 10;

struct StepRecord {
  int64_t step = 0;                // steps done after this one (1 after the first)
  double loss = 0;                 // loss of this step's batch
  double lr = 0;                   // learning rate of this step's update
  double grad_norm = 0;            // global gradient norm before clipping
  double seconds = 0;              // wall time of this step (loss function included)
  double elapsed_s = 0;            // wall time of every step so far (across resumes)
  double tokens_per_s = 0;         // tokens_per_step / seconds
  std::optional<double> val_loss;  // set by run() when it evaluated after this step
  bool skipped = false;            // skip_nonfinite: NaN or Inf, so no update was made
};

struct Hooks {
  std::function<double()> evaluate;                // validation loss
  int64_t eval_every = 0;                          // 0: only after the last step
  std::function<bool(const StepRecord&)> on_step;  // false = stop early
  std::function<void()> checkpoint;                // save the run
  int64_t checkpoint_every = 0;                    // 0: only when run() returns
  double checkpoint_after_s = 0;                   // also by wall time (0: not by time)
};

class Fit {
 public:
  // `params` are updated in place; their order is the order of the gradient-norm sum.
  Fit(const std::vector<std::pair<std::string, Tensor>>& params, const FitOptions& options);

  // One step (see the top of this file). Throws tz::Error on a NaN or Inf loss or gradient.
  StepRecord step(const LossFn& loss);
  StepRecord step_with_grads(const GradFn& grads);
  // Steps until options().steps are done or on_step says stop, calling the hooks.
  void run(const LossFn& loss, const Hooks& hooks = {});
  void run_with_grads(const GradFn& grads, const Hooks& hooks = {});

  // Continues a saved run: the optimizer's state_dict, the steps done and their wall time.
  void restore(const std::map<std::string, Tensor>& optimizer_state, int64_t steps_done, double elapsed_s);

  int64_t steps_done() const { return steps_done_; }
  double elapsed_s() const { return elapsed_s_; }
  bool stopped_on_error() const { return failed_step_ > 0; }
  const FitOptions& options() const { return options_; }
  const optim::Optimizer& optimizer() const { return *optimizer_; }

 private:
  StepRecord step(const LossFn* loss, const GradFn* grads);
  void run_steps(const std::function<StepRecord()>& step, const Hooks& hooks);
  // Stops the run (throws), or with skip_nonfinite marks r skipped and returns.
  void non_finite_step(StepRecord& r, const std::string& what, const std::string& facts);

  FitOptions options_;
  std::vector<Tensor> params_;
  std::unique_ptr<optim::AdamW> optimizer_;
  int64_t steps_done_ = 0;
  double elapsed_s_ = 0;
  int64_t failed_step_ = 0;     // the step that stopped the run (0: none)
  int64_t skipped_in_row_ = 0;  // skip_nonfinite: steps skipped since the last update
};

// A fresh Fit over `params`, run to the end: the records of every step.
std::vector<StepRecord> fit(const std::vector<std::pair<std::string, Tensor>>& params, const LossFn& loss,
                            const FitOptions& options, const Hooks& hooks = {});

}  // namespace tz::train
