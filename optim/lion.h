// Lion: EvoLved Sign Momentum (Chen et al., "Symbolic Discovery of Optimization
// Algorithms", arXiv:2302.06675, Algorithm 2). For each parameter p with gradient g:
//   u  = sign(beta1 * m + (1 - beta1) * g)     (every coordinate moves by exactly lr)
//   p -= lr * (u + weight_decay * p)           (decoupled decay, as AdamW)
//   m  = beta2 * m + (1 - beta2) * g           (state "exp_avg.<name>")
// The update has unit size per coordinate, so the paper uses a 3-10x smaller lr and a 3-10x
// larger weight decay than AdamW. sign(0) = 0.
#pragma once

#include <array>

#include "optim/optimizer.h"

namespace tz::optim {

struct LionOptions {
  double lr = 1e-4;
  std::array<double, 2> betas = {0.9, 0.99};  // interpolation (beta1), momentum decay (beta2)
  double weight_decay = 0.0;                  // decoupled; flat-list constructor only
};

class Lion : public Optimizer {
 public:
  // With groups, each group's weight_decay is used and options.weight_decay is ignored.
  Lion(std::vector<ParamGroup> groups, const LionOptions& options);
  Lion(const std::vector<std::pair<std::string, Tensor>>& named, const LionOptions& options);
  const LionOptions& options() const { return options_; }

 private:
  void update(Slot& slot, const Tensor& g, double lr) override;
  LionOptions options_;
};

}  // namespace tz::optim
