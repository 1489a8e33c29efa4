// TransNormerLLM's token mixer: see transnormer_llm.h (the layer is LightningAttention with LRPE-d).
#include "nn/linear_rnn/transnormer_llm.h"

#include "nn/registry.h"

namespace tz::zoo {

void register_transnormer_llm(nn::Registry& r) {
  r.add({.id = "transnormer_llm",
         .summary = "TransNormerLLM: lightning attention with LRPE-d (decay lambda_h and cos(theta (t - s))), "
                    "SRMSNorm, U gate",
         .keys = {nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "transnormer_llm", "linear_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "transnormer_llm", "ffn": "glu_variants", )"
                    R"("ffn_glu": "bilinear"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0,
                        "transnormer_llm: a causal self-mixer only (no encoder or cross use)");
               return std::make_shared<nn::LightningAttention>(
                   nn::LightningAttentionOptions{.dim = d.dim,
                                                 .heads = d.heads,
                                                 .layer = d.layer,
                                                 .depth = std::max<int64_t>(d.depth, d.layer + 1),
                                                 .chunk = nn::linear_chunk(c),
                                                 .form = nn::linear_form(c),
                                                 .lrpe = true},
                   gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
