// Bias-free linear and norm layers (Geiping & Goldstein 2023, "Cramming: Training a Language
// Model on a Single GPU in One Day", arXiv:2212.14034): `bias: false` reaches every component
// through ModelDims::bias, which drops the biases of the QKV, output and FFN linears and
// LayerNorm's β.
#include "models/keys.h"
#include "nn/registry.h"

namespace tz::zoo {

void register_no_bias_cramming(nn::Registry& r) {
  r.add({.id = "no_bias_cramming",
         .summary = "Global no-bias flag: no biases in the QKV/out/FFN linears nor LayerNorm β",
         .keys = {models::kBias},
         .test_config = R"({"bias": false})",
         .example = R"({"bias": false, "norm_placement": "pre"})"});
}

}  // namespace tz::zoo
