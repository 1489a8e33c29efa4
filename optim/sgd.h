// Stochastic gradient descent with momentum, PyTorch semantics (torch.optim.SGD).
//
// For each parameter p with gradient g, at its step t = 1, 2, ...:
//   d  = g + weight_decay * p                       (L2 weight decay, into the gradient)
//   b  = t == 1 ? d : momentum * b + (1 - dampening) * d     (when momentum != 0)
//   d  = nesterov ? d + momentum * b : b                      (when momentum != 0)
//   p -= lr * d
// Nesterov momentum in this form: Sutskever et al. 2013, "On the importance of
// initialization and momentum in deep learning". State: "momentum.<name>" (when momentum != 0).
#pragma once

#include "optim/optimizer.h"

namespace tz::optim {

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;      // heavy-ball momentum (Polyak 1964); 0 = plain SGD
  double dampening = 0.0;     // scales the new gradient into the buffer by 1 - dampening
  bool nesterov = false;      // Nesterov momentum (needs momentum > 0, dampening = 0)
  double weight_decay = 0.0;  // L2; used by the flat-list constructor (groups carry their own)
};

class SGD : public Optimizer {
 public:
  // With groups, each group's weight_decay is used and options.weight_decay is ignored.
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  SGD(const std::vector<std::pair<std::string, Tensor>>& named, const SGDOptions& options);
  const SGDOptions& options() const { return options_; }

 private:
  void update(Slot& slot, const Tensor& g, double lr) override;
  SGDOptions options_;
};

}  // namespace tz::optim
