// Gradient clipping by global norm (Pascanu et al. 2013, "On the difficulty of training
// recurrent neural networks", arXiv:1211.5063), as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tz::optim {

// norm = sqrt(sum over every parameter's grad of g^2), accumulated in f64 (parameters
// without a gradient are skipped). When norm > max_norm, every grad is scaled in place by
//   max_norm / (norm + 1e-6)
// (only when that factor is < 1, as PyTorch). Returns the norm before clipping. A NaN or
// Inf norm is returned as it is and nothing is scaled: the caller should skip the step.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace tz::optim
