// The activation-function registry of the survey (Gustineli 2022); see activation_survey.h.
#include "nn/ffn/activation_survey.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
constexpr std::pair<SurveyActivation, const char*> kSurvey[] = {
    {SurveyActivation::relu, "relu"},         {SurveyActivation::leaky_relu, "leaky_relu"},
    {SurveyActivation::prelu, "prelu"},       {SurveyActivation::elu, "elu"},
    {SurveyActivation::selu, "selu"},         {SurveyActivation::gelu, "gelu"},
    {SurveyActivation::gelu_tanh, "gelu_tanh"}, {SurveyActivation::silu, "silu"},
    {SurveyActivation::swish, "swish"},       {SurveyActivation::mish, "mish"},
    {SurveyActivation::softplus, "softplus"}, {SurveyActivation::sigmoid, "sigmoid"},
    {SurveyActivation::tanh, "tanh"},
};
constexpr double kSeluLambda = 1.0507009873554804934193349852946;  // Klambauer et al. 2017
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

// a (e^min(x, 0) - 1) + max(x, 0): the min keeps exp from overflowing for large x.
Tensor elu(const Tensor& x, double a) {
  return relu(x) + a * (exp(minimum(x, zeros_like(x))) - 1.0);
}
}  // namespace

SurveyActivation parse_survey_activation(const std::string& name) {
  std::string valid;
  for (auto& [a, n] : kSurvey) {
    if (name == n) return a;
    valid += (valid.empty() ? "" : ", ") + std::string(n);
  }
  throw Error(cat_str("config key 'survey_activation': unknown activation '", name, "'; valid: ", valid));
}

const char* survey_activation_name(SurveyActivation a) {
  for (auto& [x, n] : kSurvey)
    if (x == a) return n;
  return "?";
}

std::vector<SurveyActivation> all_survey_activations() {
  std::vector<SurveyActivation> out;
  for (auto& [a, n] : kSurvey) out.push_back(a);
  return out;
}

Tensor survey_activate(SurveyActivation a, const Tensor& x, const Tensor& prelu_a, double beta) {
  switch (a) {
    case SurveyActivation::relu: return relu(x);
    case SurveyActivation::leaky_relu: return maximum(x, 0.01 * x);
    case SurveyActivation::prelu:
      TZ_CHECK(prelu_a.defined(), "survey_activate: prelu needs its learned slope");
      return relu(x) + prelu_a * minimum(x, zeros_like(x));
    case SurveyActivation::elu: return elu(x, 1.0);
    case SurveyActivation::selu: return kSeluLambda * elu(x, kSeluAlpha);
    case SurveyActivation::gelu: return gelu(x);
    case SurveyActivation::gelu_tanh: return gelu_tanh(x);
    case SurveyActivation::silu: return silu(x);
    case SurveyActivation::swish: return x * sigmoid(beta * x);
    case SurveyActivation::mish: return x * tanh(softplus(x));
    case SurveyActivation::softplus: return softplus(x);
    case SurveyActivation::sigmoid: return sigmoid(x);
    case SurveyActivation::tanh: return tanh(x);
  }
  throw Error("survey_activate: unknown activation");
}

SurveyFFN::SurveyFFN(const SurveyFFNOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.hidden > 0, "SurveyFFN: dim and hidden must be positive");
  fc = register_module("fc", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = o.hidden, .bias = o.bias}, gen));
  proj = register_module("proj", std::make_shared<Linear>(
                                     LinearOptions{.in = o.hidden, .out = o.dim, .bias = o.bias,
                                                   .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
  if (o.activation == SurveyActivation::prelu) prelu_a = register_parameter("prelu_a", full({1}, 0.25));  // He et al. 2015
}

Tensor SurveyFFN::forward(const Tensor& x) const {
  return drop->forward(proj->forward(survey_activate(options.activation, fc->forward(x), prelu_a, options.swish_beta)));
}

std::string SurveyFFN::describe() const {
  return cat_str("SurveyFFN(", options.dim, " -> ", options.hidden, " -> ", options.dim, ", ",
                 survey_activation_name(options.activation), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_activation_survey(nn::Registry& r) {
  r.add({.id = "activation_survey",
         .summary = "FFN whose activation comes from the survey's registry: relu, leaky_relu, prelu, elu, selu, "
                    "gelu, gelu_tanh, silu, swish, mish, softplus, sigmoid, tanh",
         .keys = {{"survey_activation", "\"mish\"", "the activation (see the summary)"},
                  {"survey_swish_beta", "1.0", "beta of swish: x sigmoid(beta x)"},
                  {"ffn_mult", "4", "hidden width as a multiple of dim"}},
         .test_config = R"({"ffn": "activation_survey", "survey_activation": "mish"})",
         .example = R"({"ffn": "activation_survey", "survey_activation": "selu"})",
         .ffn = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           int64_t mult = c.get_int("ffn_mult", 4);
           TZ_CHECK(mult > 0, c.source(), ": ffn_mult must be positive, got ", mult);
           double beta = c.get_double("survey_swish_beta", 1.0);
           TZ_CHECK(std::isfinite(beta), c.source(), ": survey_swish_beta must be finite, got ", beta);
           return std::make_shared<nn::SurveyFFN>(
               nn::SurveyFFNOptions{.dim = d.dim, .hidden = mult * d.dim,
                                    .activation = nn::parse_survey_activation(c.get_string("survey_activation", "mish")),
                                    .swish_beta = beta, .bias = d.bias, .dropout = d.dropout,
                                    .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1)))},
               gen);
         }});
}

}  // namespace tz::zoo
