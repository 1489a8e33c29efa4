// "A survey on recently proposed activation functions for Deep Learning" (Gustineli, arXiv,
// April 2022), realised as the activation registry (activations.h, which lists the formulas
// of the survey's 13 entries and their kinks) and this id: an FFN whose activation is
// chosen by `survey_activation`.
//
// The FFN is ffn_mlp's: y = act(x W1 + b1) W2 + b2, hidden = ffn_mult * dim, with prelu's
// learned slope `prelu_a` and swish's beta (`survey_swish_beta`).
#pragma once

#include "nn/ffn/mlp.h"

namespace tz::nn {

inline const Key<std::string> kSurveyActivation{"survey_activation", "mish",
                                                "the activation, a name of nn/ffn/activations.h (see the summary)"};
inline const Key<double> kSurveySwishBeta{"survey_swish_beta", 1.0, "beta of swish: x sigmoid(beta x)"};

}  // namespace tz::nn
