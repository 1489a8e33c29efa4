// Squared ReLU, from "Primer: Searching for Efficient Transformers for Language Modeling"
// (So et al. 2021), arXiv:2109.08668.
//
//   act(x) = max(0, x)^2          d act / dx = 2 max(0, x)
//
// The activation itself is the registry's `relu_squared` (nn/ffn/activations.cpp, composed as
// relu(x) * relu(x), so its gradient comes from relu and mul). Its value and derivative are
// both continuous at 0, unlike ReLU's derivative, so no subgradient choice is needed. This
// file only registers the catalogue id: an option of ffn_mlp, switched on by
// {"activation": "relu_squared"} (the `activation` key belongs to ffn_mlp, which reads it).
#include "nn/ffn/mlp.h"
#include "nn/registry.h"

namespace tz::zoo {

void register_relu_squared(nn::Registry& r) {
  r.add({.id = "relu_squared",
         .summary = "Squared ReLU max(0, x)^2 as the FFN activation (Primer); an option of ffn_mlp",
         .keys = {nn::kActivation},
         .test_config = R"({"ffn": "ffn_mlp", "activation": "relu_squared"})",
         .example = R"({"ffn": "ffn_mlp", "activation": "relu_squared"})"});
}

}  // namespace tz::zoo
