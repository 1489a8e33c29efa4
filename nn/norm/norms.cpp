// Registry entries for the normalisation layers (the layers themselves are in nn/layers.h,
// with their keys).
//   layernorm: (x - mean) / sqrt(var + eps) * g + b      (Ba et al. 2016, arXiv:1607.06450)
//   rmsnorm:   x / sqrt(mean(x^2) + eps) * g             (Zhang & Sennrich 2019, arXiv:1910.07467)
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::zoo {

void register_layernorm(nn::Registry& r) {
  r.add({.id = "layernorm",
         .family = "norm_residual",  // an extra: not a catalogue row (pre_post_norm covers it)
         .kind = "norm",
         .paper = "arXiv:1607.06450",
         .summary = "LayerNorm over the channels (the default norm; the catalogue covers it under pre_post_norm)",
         .keys = {nn::kLayerNormEps},
         .test_config = R"({"norm": "layernorm"})",
         .example = R"({"norm": "layernorm"})",
         .extra = true,
         .norm = [](const nn::ModelDims& d, const nn::Config& c, Generator&) {
           return std::make_shared<nn::LayerNorm>(
               nn::NormOptions{.dim = d.dim, .eps = c.get(nn::kLayerNormEps), .bias = d.bias});
         }});
}

void register_rmsnorm(nn::Registry& r) {
  r.add({.id = "rmsnorm",
         .summary = "RMSNorm: divide by the root mean square (no centring, no bias)",
         .keys = {nn::kRmsNormEps},
         .test_config = R"({"norm": "rmsnorm"})",
         .example = R"({"norm": "rmsnorm"})",
         .norm = [](const nn::ModelDims& d, const nn::Config& c, Generator&) {
           return std::make_shared<nn::RMSNorm>(nn::NormOptions{.dim = d.dim, .eps = c.get(nn::kRmsNormEps)});
         }});
}

}  // namespace tz::zoo
