// The feed-forward network, plain or gated (see mlp.h), and the ffn_mlp id.
#include "nn/ffn/mlp.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

MLPOptions ffn_options(const ModelDims& d, const Config& c) {
  int64_t mult = c.get(kFfnMult);
  TZ_CHECK(mult > 0, c.source(), ": ffn_mult must be positive, got ", mult);
  return MLPOptions{.dim = d.dim,
                    .hidden = mult * d.dim,
                    .bias = d.bias,
                    .dropout = d.dropout,
                    .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1)))};
}

MLP::MLP(const MLPOptions& o, Generator& gen) : options(o), act_(&find_activation(o.activation)) {
  TZ_CHECK(o.dim > 0 && o.hidden >= 0, "MLP: dim must be positive and hidden non-negative, got dim=", o.dim,
           " hidden=", o.hidden);
  TZ_CHECK(std::isfinite(o.swish_beta), "MLP: swish_beta must be finite, got ", o.swish_beta);
  if (options.hidden == 0) options.hidden = 4 * o.dim;
  const int64_t F = options.hidden;
  if (o.gated) {
    gate = register_module("gate", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = F, .bias = o.bias}, gen));
    up = register_module("up", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = F, .bias = o.bias}, gen));
  } else {
    fc = register_module("fc", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = F, .bias = o.bias}, gen));
  }
  proj = register_module(
      "proj",
      std::make_shared<Linear>(LinearOptions{.in = F, .out = o.dim, .bias = o.bias, .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
  if (act_->learned_slope) prelu_a = register_parameter("prelu_a", full({1}, 0.25));
}

Tensor MLP::key_coefficients(const Tensor& x) const {
  const ActivationArgs args{.slope = prelu_a, .beta = options.swish_beta};
  if (options.gated) return act_->fn(gate->forward(x), args) * up->forward(x);  // act(xW) ⊙ xV
  return act_->fn(fc->forward(x), args);
}

Tensor MLP::forward(const Tensor& x) const {
  Tensor m = key_coefficients(x);
  if (on_keys) on_keys(m.detach());
  return drop->forward(proj->forward(m));
}

std::string MLP::describe() const {
  return cat_str("MLP(", options.dim, options.gated ? " -> 2 x " : " -> ", options.hidden, " -> ", options.dim, ", ",
                 options.gated ? "gated " : "", options.activation, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_ffn_mlp(nn::Registry& r) {
  r.add({.id = "ffn_mlp",
         .summary = "Position-wise feed-forward network: W2 act(W1 x + b1) + b2, hidden = ffn_mult * dim",
         .keys = {nn::kFfnMult, nn::kActivation},
         .test_config = R"({"ffn": "ffn_mlp", "activation": "relu"})",
         .example = R"({"ffn": "ffn_mlp", "ffn_mult": 4, "activation": "gelu"})",
         .ffn = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           nn::MLPOptions o = nn::ffn_options(d, c);
           o.activation = nn::find_activation(c.get(nn::kActivation), nn::kActivation.name).name;
           return std::make_shared<nn::MLP>(o, gen);
         }});
}

}  // namespace tz::zoo
