// Adam and AdamW.
//
// Adam (Kingma & Ba, arXiv:1412.6980, Algorithm 1), with PyTorch's weight decay as an L2
// term in the gradient. For each parameter p with gradient g, at its step t = 1, 2, ...:
//   g  = g + weight_decay * p                 (Adam only)
//   m  = beta1 * m + (1 - beta1) * g          (first moment, "exp_avg.<name>")
//   v  = beta2 * v + (1 - beta2) * g^2        (second moment, "exp_avg_sq.<name>")
//   m^ = m / (1 - beta1^t),  v^ = v / (1 - beta2^t)      (bias corrections)
//   p -= lr * m^ / (sqrt(v^) + eps)
//
// AdamW (Loshchilov & Hutter, arXiv:1711.05101): the decay is decoupled from the gradient
// and applied to the parameter before the Adam update, as torch.optim.AdamW does:
//   p *= 1 - lr * weight_decay,  then the Adam update with the raw g.
// (With L2 inside Adam, the decay is divided by sqrt(v^) and so is weak for parameters
// with large gradients; decoupling makes it a plain shrink for every parameter.)
#pragma once

#include <array>

#include "optim/optimizer.h"

namespace tz::optim {

struct AdamOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};  // decay rates of m and v, each in [0, 1)
  double eps = 1e-8;                           // keeps the denominator away from 0
  double weight_decay = 0.0;                   // L2; flat-list constructor only
};

struct AdamWOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled; flat-list constructor only
};

class Adam : public Optimizer {
 public:
  // With groups, each group's weight_decay is used and options.weight_decay is ignored.
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options);
  Adam(const std::vector<std::pair<std::string, Tensor>>& named, const AdamOptions& options);
  const AdamOptions& options() const { return options_; }

 private:
  void update(Slot& slot, const Tensor& g, double lr) override;
  AdamOptions options_;
};

class AdamW : public Optimizer {
 public:
  // With groups (e.g. from decay_groups), each group's weight_decay is used and
  // options.weight_decay is ignored.
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options);
  AdamW(const std::vector<std::pair<std::string, Tensor>>& named, const AdamWOptions& options);
  const AdamWOptions& options() const { return options_; }

 private:
  void update(Slot& slot, const Tensor& g, double lr) override;
  AdamWOptions options_;
};

}  // namespace tz::optim
