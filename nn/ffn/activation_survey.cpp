// The activation_survey id (Gustineli 2022); see activation_survey.h.
#include "nn/ffn/activation_survey.h"

#include <cmath>

#include "nn/registry.h"

namespace tz::zoo {

void register_activation_survey(nn::Registry& r) {
  r.add({.id = "activation_survey",
         .summary = "FFN whose activation comes from the activation registry, which holds the survey's relu, "
                    "leaky_relu, prelu, elu, selu, gelu, gelu_tanh, silu, swish, mish, softplus, sigmoid, tanh",
         .keys = {nn::kSurveyActivation, nn::kSurveySwishBeta, nn::kFfnMult},
         .test_config = R"({"ffn": "activation_survey", "survey_activation": "mish"})",
         .example = R"({"ffn": "activation_survey", "survey_activation": "selu"})",
         .ffn = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           nn::MLPOptions o = nn::ffn_options(d, c);
           o.activation = nn::find_activation(c.get(nn::kSurveyActivation), nn::kSurveyActivation.name).name;
           o.swish_beta = c.get(nn::kSurveySwishBeta);
           TZ_CHECK(std::isfinite(o.swish_beta), c.source(), ": survey_swish_beta must be finite, got ", o.swish_beta);
           return std::make_shared<nn::MLP>(o, gen);
         }});
}

}  // namespace tz::zoo
