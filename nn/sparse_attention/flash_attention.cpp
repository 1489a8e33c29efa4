// FlashAttention as a named mixer: see flash_attention.h.
#include "nn/sparse_attention/flash_attention.h"

#include "nn/registry.h"

namespace tz::zoo {

void register_flash_attention(nn::Registry& r) {
  r.add({.id = "flash_attention",
         .summary = "FlashAttention: the fused tiled online-softmax kernel, backward recomputed from the lse",
         .test_config = R"({"mixer": "flash_attention"})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "flash_attention"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config&, Generator& gen) {
           nn::check_causal_self("flash_attention", d.causal, d.context_dim);
           return std::make_shared<nn::SparseAttention>(
               nn::SparseAttentionOptions{
                   .dim = d.dim,
                   .heads = d.heads,
                   .name = "flash_attention",
                   .attend = [](const Tensor& q, const Tensor& k, const Tensor& v,
                                int64_t q_offset) { return nn::attend_masked(q, k, v, q_offset, nullptr); }},
               gen);
         }});
}

}  // namespace tz::zoo
