// GLU-variant feed-forward networks (Shazeer 2020, arXiv:2002.05202); see glu.h.
#include "nn/ffn/glu.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
constexpr std::pair<GLUGate, const char*> kGates[] = {
    {GLUGate::glu, "glu"},     {GLUGate::bilinear, "bilinear"}, {GLUGate::reglu, "reglu"},
    {GLUGate::geglu, "geglu"}, {GLUGate::swiglu, "swiglu"},
};
}  // namespace

GLUGate parse_glu_gate(const std::string& name) {
  std::string valid;
  for (auto& [g, n] : kGates) {
    if (name == n) return g;
    valid += (valid.empty() ? "" : ", ") + std::string(n);
  }
  throw Error(cat_str("config key 'ffn_glu': unknown gate '", name, "'; valid: ", valid));
}

const char* glu_gate_name(GLUGate g) {
  for (auto& [x, n] : kGates)
    if (x == g) return n;
  return "?";
}

GLUFFN::GLUFFN(const GLUOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.hidden > 0, "GLUFFN: dim and hidden must be positive, got dim=", o.dim,
           " hidden=", o.hidden);
  gate = register_module("gate", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = o.hidden, .bias = o.bias}, gen));
  up = register_module("up", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = o.hidden, .bias = o.bias}, gen));
  proj = register_module("proj", std::make_shared<Linear>(
                                     LinearOptions{.in = o.hidden, .out = o.dim, .bias = o.bias,
                                                   .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
}

Tensor GLUFFN::gate_of(const Tensor& x) const {
  Tensor a = gate->forward(x);  // x W  [B, T, F]
  switch (options.gate) {
    case GLUGate::glu: return sigmoid(a);
    case GLUGate::bilinear: return a;
    case GLUGate::reglu: return relu(a);
    case GLUGate::geglu: return gelu(a);
    case GLUGate::swiglu: return silu(a);
  }
  throw Error("GLUFFN: unknown gate");
}

Tensor GLUFFN::forward(const Tensor& x) const {
  return drop->forward(proj->forward(gate_of(x) * up->forward(x)));  // (act(xW) ⊙ xV) W2
}

std::string GLUFFN::describe() const {
  return cat_str("GLUFFN(", options.dim, " -> 2 x ", options.hidden, " -> ", options.dim, ", ",
                 glu_gate_name(options.gate), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_glu_variants(nn::Registry& r) {
  r.add({.id = "glu_variants",
         .summary = "Gated FFN (act(xW) ⊙ xV) W2 with act = sigmoid, identity, ReLU, GELU or SiLU; hidden 2/3 of the MLP's",
         .keys = {{"ffn_glu", "\"swiglu\"", "glu (sigmoid), bilinear (identity), reglu, geglu or swiglu"},
                  {"ffn_mult", "4", "the ReLU FFN's hidden multiple; hidden = floor(2 * ffn_mult * dim / 3)"}},
         .test_config = R"({"ffn": "glu_variants", "ffn_glu": "swiglu"})",
         .example = R"({"ffn": "glu_variants", "ffn_glu": "geglu", "ffn_mult": 4})",
         .ffn = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           int64_t mult = c.get_int("ffn_mult", 4);
           TZ_CHECK(mult > 0, c.source(), ": ffn_mult must be positive, got ", mult);
           int64_t hidden = 2 * mult * d.dim / 3;  // floor(2 d_ff / 3)
           TZ_CHECK(hidden > 0, c.source(), ": ffn_mult ", mult, " x dim ", d.dim, " gives no hidden units");
           return std::make_shared<nn::GLUFFN>(
               nn::GLUOptions{.dim = d.dim, .hidden = hidden,
                              .gate = nn::parse_glu_gate(c.get_string("ffn_glu", "swiglu")),
                              .bias = d.bias, .dropout = d.dropout,
                              .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1)))},
               gen);
         }});
}

}  // namespace tz::zoo
