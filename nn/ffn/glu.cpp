// GLU-variant feed-forward networks (Shazeer 2020, arXiv:2002.05202); see glu.h.
#include "nn/ffn/glu.h"

#include "nn/registry.h"

namespace tz::nn {

const char* glu_gate_activation(const std::string& gate) {
  static constexpr std::pair<const char*, const char*> kGates[] = {
      {"glu", "sigmoid"}, {"bilinear", "identity"}, {"reglu", "relu"}, {"geglu", "gelu"}, {"swiglu", "silu"},
  };
  std::string valid;
  for (auto& [g, act] : kGates) {
    if (gate == g) return act;
    valid += (valid.empty() ? "" : ", ") + std::string(g);
  }
  throw Error(cat_str("config key '", kGluGate.name, "': unknown gate '", gate, "'; valid: ", valid));
}

}  // namespace tz::nn

namespace tz::zoo {

void register_glu_variants(nn::Registry& r) {
  r.add({.id = "glu_variants",
         .summary = "Gated FFN (act(xW) ⊙ xV) W2 with act = sigmoid, identity, ReLU, GELU or SiLU; "
                    "hidden 2/3 of the MLP's",
         .keys = {nn::kGluGate, nn::kFfnMult},
         .test_config = R"({"ffn": "glu_variants", "ffn_glu": "swiglu"})",
         .example = R"({"ffn": "glu_variants", "ffn_glu": "geglu", "ffn_mult": 4})",
         .ffn = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           nn::MLPOptions o = nn::ffn_options(d, c);
           o.hidden = 2 * o.hidden / 3;  // floor(2 d_ff / 3)
           TZ_CHECK(o.hidden > 0, c.source(), ": ffn_mult ", c.get(nn::kFfnMult), " x dim ", d.dim,
                    " gives no hidden units");
           o.activation = nn::glu_gate_activation(c.get(nn::kGluGate));
           o.gated = true;
           return std::make_shared<nn::MLP>(o, gen);
         }});
}

}  // namespace tz::zoo
