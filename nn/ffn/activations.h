// The activation functions of the zoo, as one registry: a name → a function composed of
// differentiable primitives (autograd/ops.def), so every gradient comes from theirs. Each FFN
// reads it: ffn_mlp (`activation`), activation_survey (`survey_activation`) and glu_variants
// (its gates map to entries). x has any shape; every entry acts elementwise.
//
// The 13 of "A survey on recently proposed activation functions for Deep Learning"
// (Gustineli, arXiv, April 2022):
//   relu        max(0, x)                                     (kink at 0: gradient 0)
//   leaky_relu  max(x, a x), a = 0.01                         (kink at 0: gradient 1)
//   prelu       max(0, x) + a min(0, x), a learned, init 0.25 (kink at 0: gradient a)
//   elu         x for x > 0, a (e^x - 1) else, a = 1          (smooth for a = 1)
//   selu        l * elu(x; a), l = 1.0507..., a = 1.6732...   (kink at 0: gradient l a)
//   gelu        x Phi(x) (erf); gelu_tanh its tanh approximation (Hendrycks & Gimpel, arXiv:1606.08415)
//   silu        x sigmoid(x); swish: x sigmoid(b x), b = ActivationArgs::beta (arXiv:1710.05941)
//   mish        x tanh(softplus(x))
//   softplus    log(1 + e^x); sigmoid; tanh
// and two more:
//   relu_squared  max(0, x)^2, as relu(x) * relu(x) (So et al. 2021, Primer, arXiv:2109.08668):
//                 value and derivative 2 max(0, x) are both continuous at 0, no subgradient choice
//   identity      x (the gate of the bilinear GLU, Shazeer 2020)
// At a kink the gradient is one of the two one-sided derivatives, chosen by the primitive
// (relu: 0; maximum/minimum: the first argument at ties).
//
// Adding an activation is one row of the table in activations.cpp; every FFN id accepts it.
#pragma once

#include <span>
#include <string>

#include "core/tensor.h"

namespace tz::nn {

// What some entries read beside x.
struct ActivationArgs {
  Tensor slope;       // prelu: the learned a, [1]
  double beta = 1.0;  // swish
};

struct ActivationEntry {
  const char* name;
  Tensor (*fn)(const Tensor& x, const ActivationArgs& args);
  bool learned_slope;  // reads ActivationArgs::slope: its FFN owns the parameter `prelu_a`
};

// Every entry, in the order above (a constant table: safe to read during static initialisation).
std::span<const ActivationEntry> activations();
// The entry called `name`; throws naming the config `key`, the unknown name and the valid ones.
const ActivationEntry& find_activation(const std::string& name, const std::string& key = "activation");
// "relu, leaky_relu, ...": the valid names, for docs and errors.
std::string activation_names();
// act(x) for the entry called `name`.
Tensor activate(const std::string& name, const Tensor& x, const ActivationArgs& args = {});

}  // namespace tz::nn
