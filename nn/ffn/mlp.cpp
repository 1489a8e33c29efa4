#include "nn/ffn/mlp.h"

#include <cmath>

#include "nn/registry.h"

namespace tz::nn {

MLP::MLP(const MLPOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.hidden >= 0, "MLP: dim must be positive and hidden non-negative");
  if (options.hidden == 0) options.hidden = 4 * o.dim;
  fc = register_module("fc", std::make_shared<Linear>(
                                 LinearOptions{.in = o.dim, .out = options.hidden, .bias = o.bias}, gen));
  proj = register_module("proj", std::make_shared<Linear>(
                                     LinearOptions{.in = options.hidden, .out = o.dim, .bias = o.bias,
                                                   .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
}

Tensor MLP::key_coefficients(const Tensor& x) const { return activate(options.activation, fc->forward(x)); }

Tensor MLP::forward(const Tensor& x) const {
  Tensor m = key_coefficients(x);
  if (on_keys) on_keys(m.detach());
  return drop->forward(proj->forward(m));
}

std::string MLP::describe() const {
  return cat_str("MLP(", options.dim, " -> ", options.hidden, " -> ", options.dim, ", ",
                 activation_name(options.activation), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_ffn_mlp(nn::Registry& r) {
  r.add({.id = "ffn_mlp",
         .summary = "Position-wise feed-forward network: W2 act(W1 x + b1) + b2, hidden = ffn_mult * dim",
         .keys = {{"ffn_mult", "4", "hidden width as a multiple of dim"},
                  {"activation", "\"gelu\"", "relu, gelu, gelu_tanh, silu or relu_squared"}},
         .test_config = R"({"ffn": "ffn_mlp", "activation": "relu"})",
         .example = R"({"ffn": "ffn_mlp", "ffn_mult": 4, "activation": "gelu"})",
         .ffn = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           int64_t mult = c.get_int("ffn_mult", 4);
           TZ_CHECK(mult > 0, c.source(), ": ffn_mult must be positive, got ", mult);
           return std::make_shared<nn::MLP>(
               nn::MLPOptions{.dim = d.dim, .hidden = mult * d.dim,
                              .activation = nn::parse_activation(c.get_string("activation", "gelu")),
                              .bias = d.bias, .dropout = d.dropout,
                              .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1)))},
               gen);
         }});
}

}  // namespace tz::zoo
