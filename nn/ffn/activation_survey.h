// The activation functions of "A survey on recently proposed activation functions for Deep
// Learning" (Gustineli, arXiv, April 2022), as one registry an FFN can choose from.
//
// Every entry is composed of differentiable primitives (autograd/ops.def), so its gradient
// comes from theirs. x has any shape; all act elementwise.
//   relu        max(0, x)                                     (kink at 0: gradient 0)
//   leaky_relu  max(x, a x), a = 0.01                         (kink at 0: gradient 1)
//   prelu       max(0, x) + a min(0, x), a learned, init 0.25 (kink at 0: gradient a)
//   elu         x for x > 0, a (e^x - 1) else, a = 1          (smooth for a = 1)
//   selu        l * elu(x; a), l = 1.0507..., a = 1.6732...   (kink at 0: gradient l a)
//   gelu        x Phi(x) (erf); gelu_tanh its tanh approximation
//   silu        x sigmoid(x); swish: x sigmoid(b x), b = `survey_swish_beta`
//   mish        x tanh(softplus(x))
//   softplus    log(1 + e^x); sigmoid; tanh
// At a kink the gradient is one of the two one-sided derivatives, chosen by the primitive
// (relu: 0; maximum/minimum: the first argument at ties); the proof checks it lies between them.
//
// The FFN that uses them is ffn_mlp's: y = act(x W1 + b1) W2 + b2, hidden = ffn_mult * dim.
#pragma once

#include "nn/layers.h"

namespace tz::nn {

enum class SurveyActivation { relu, leaky_relu, prelu, elu, selu, gelu, gelu_tanh, silu, swish, mish, softplus, sigmoid, tanh };
SurveyActivation parse_survey_activation(const std::string& name);  // throws naming the key and the choices
const char* survey_activation_name(SurveyActivation a);
std::vector<SurveyActivation> all_survey_activations();

// act(x); prelu_a ([1], learned) is read by prelu only; beta by swish only.
Tensor survey_activate(SurveyActivation a, const Tensor& x, const Tensor& prelu_a = Tensor(), double beta = 1.0);

struct SurveyFFNOptions {
  int64_t dim = 0;
  int64_t hidden = 0;
  SurveyActivation activation = SurveyActivation::mish;
  double swish_beta = 1.0;
  bool bias = true;
  double dropout = 0.0;
  double out_init_std = 0.02;
};

class SurveyFFN : public UnaryModule {
 public:
  SurveyFFN(const SurveyFFNOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  SurveyFFNOptions options;
  std::shared_ptr<Linear> fc, proj;
  std::shared_ptr<Dropout> drop;
  Tensor prelu_a;  // [1], only for prelu
};

}  // namespace tz::nn
