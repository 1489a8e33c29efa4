// The optimizer base class and parameter groups.
//
// An optimizer holds the model's parameter tensors (handles: the same storage the modules
// hold) in named groups, and one state tensor per parameter and kind (momentum, first and
// second moments). step() reads each parameter's .grad() and updates the parameter IN
// PLACE, in no-grad mode, with a fused kernel from core/kernels/optim.h. All state is
// allocated when the optimizer is made, so step() allocates nothing.
//
// Checkpoints: state_dict() gives copies of the state, keyed
//   "<kind>.<param name>"  (kind = exp_avg, exp_avg_sq or momentum)
//   "step.<param name>"    0-d i64: how many updates this parameter has had
//   "step"                 0-d i64: how many times step() was called
// load_state_dict() is strict (missing, unexpected and wrongly shaped keys are reported by
// name, all in one tz::Error) and copies into the existing state, so a resumed run
// continues bit for bit.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tz::optim {

// Parameters that share hyper-parameters. names[i] names params[i] (hierarchical, like
// "layers.3.attn.q_proj.weight"); empty names are replaced by "<group>.<index>".
struct ParamGroup {
  std::vector<std::string> names;
  std::vector<Tensor> params;
  double weight_decay = 0.0;  // this group's decay (each optimizer applies it its own way)
  double lr_scale = 1.0;      // the group's learning rate is lr() * lr_scale
};

// Splits named parameters as GPT-2 / minGPT training does:
//   group 0 (weight_decay): matrices (dim >= 2),
//   group 1 (no decay):     biases and norm weights (dim < 2), the lookup tables (names
//                           containing "emb", as tok_emb, or ending in "table.weight", as
//                           a learned position table), and every name containing one of
//                           `exclude`.
// Both groups are returned (either may be empty); the input order is kept in each.
std::vector<ParamGroup> decay_groups(const std::vector<std::pair<std::string, Tensor>>& named, double weight_decay,
                                     const std::vector<std::string>& exclude = {});

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (parameters without one are skipped
  // and their step count does not advance).
  void step();
  // Drops every parameter's gradient (the next backward starts from none).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // e.g. from a schedule, before each step()
  int64_t step_count() const { return step_count_; }

  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state);

  const std::vector<ParamGroup>& param_groups() const { return groups_; }

 protected:
  // One parameter and its state. state[k] belongs to state_kinds()[k].
  struct Slot {
    std::string name;
    Tensor param;
    std::vector<Tensor> state;  // contiguous, same shape and dtype as param, zero at start
    int64_t step = 0;           // updates so far (1 during the first update)
    double weight_decay = 0;
    double lr_scale = 1;
  };

  // `kinds` names the state tensors each parameter gets (e.g. {"exp_avg", "exp_avg_sq"}).
  Optimizer(const char* name, std::vector<ParamGroup> groups, double lr, std::vector<std::string> kinds);
  // Turns a flat list into one group with the given decay.
  static std::vector<ParamGroup> one_group(const std::vector<std::pair<std::string, Tensor>>& named,
                                           double weight_decay);

  // Updates one parameter. g is contiguous with the parameter's dtype; slot.step was already
  // incremented; lr includes the group's lr_scale.
  virtual void update(Slot& slot, const Tensor& g, double lr) = 0;

  const char* name_;  // "SGD", "Adam", ... for messages

 private:
  std::vector<ParamGroup> groups_;
  std::vector<Slot> slots_;
  std::vector<std::string> kinds_;
  double lr_ = 0;
  int64_t step_count_ = 0;
};

namespace detail {
// Option checks shared by the optimizers: throw tz::Error naming the optimizer and option.
void check_lr(const char* opt, double lr);
void check_nonneg(const char* opt, const char* option, double value);
void check_betas(const char* opt, double beta1, double beta2);
void check_eps(const char* opt, double eps);
}  // namespace detail

}  // namespace tz::optim
