#include "models/weight_init.h"

#include <cmath>

#include "core/copy.h"
#include "core/text.h"
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::models {

namespace {
void collect_linears(const nn::Module& m, std::vector<nn::Linear*>& out) {
  for (const auto& [name, child] : m.named_children()) {
    if (auto* lin = dynamic_cast<nn::Linear*>(child.get()))
      out.push_back(lin);
    else
      collect_linears(*child, out);
  }
}
}  // namespace

void init_block_weights(const nn::Config& config, const std::vector<std::shared_ptr<nn::Module>>& blocks,
                        Generator& gen) {
  const std::string scheme = config.get(kInit);
  const double alpha = config.get(kDsInitAlpha);
  TZ_CHECK(scheme == "gpt2" || scheme == "xavier" || scheme == "ds_init", config.source(),
           ": init must be gpt2, xavier or ds_init, got '", scheme, "'");
  TZ_CHECK(std::isfinite(alpha) && alpha > 0 && alpha <= 1, config.source(), ": ds_init_alpha must be in (0, 1], got ",
           alpha);
  TZ_CHECK(scheme == "ds_init" || !config.has(kDsInitAlpha), config.source(),
           ": ds_init_alpha is a key of init 'ds_init', but init is '", scheme, "'");
  if (scheme == "gpt2") return;
  NoGradGuard no_grad;
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::vector<nn::Linear*> linears;
    collect_linears(*blocks[i], linears);
    const double depth_scale = scheme == "ds_init" ? alpha / std::sqrt(double(i + 1)) : 1.0;
    for (nn::Linear* lin : linears) {
      if (!lin->weight.defined()) continue;  // a quantized Linear keeps no f32 weight
      const double fan = double(lin->weight.size(0) + lin->weight.size(1));
      const double bound = depth_scale * std::sqrt(6.0 / fan);
      core::copy_(lin->weight, rand(lin->weight.shape(), gen, lin->weight.dtype(), -bound, bound));
    }
  }
}

}  // namespace tz::models

namespace tz::zoo {

void register_ds_init(nn::Registry& r) {
  r.add({.id = "ds_init",
         .summary = "Depth-Scaled Init: block weights U(±γ), γ = α√(6/(in+out))/√l for layer l",
         .keys = {models::kInit, models::kDsInitAlpha},
         .test_config = R"({"init": "ds_init"})",
         .example = R"({"init": "ds_init", "depth": 24, "norm_placement": "post"})"});
}

}  // namespace tz::zoo
