#include "nn/ffn/mlp.h"

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

Tensor MLP::forward(const Tensor& x) const {
  return drop->forward(proj->forward(activate(options.activation, fc->forward(x))));
}

std::string MLP::describe() const {
  return cat_str("MLP(", options.dim, " -> ", options.hidden, " -> ", options.dim, ", ",
                 activation_name(options.activation), ")");
}

}  // namespace tz::nn
