// Blockwise self-attention (BlockBERT): see blockwise_attention.h.
#include "nn/sparse_attention/blockwise_attention.h"

#include "nn/registry.h"

namespace tz::nn {

kernels::SparsePattern blockwise_pattern(int64_t b) {
  TZ_CHECK(b >= 1, "blockwise_attention: sparse_block must be >= 1, got ", b);
  return {cat_str("blockwise(b=", b, ", shifts 0,1)"), 0,
          [b](int64_t h, int64_t p, int64_t j) { return j / b == p / b - h % 2; }, b};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_blockwise_attention(nn::Registry& r) {
  r.add({.id = "blockwise_attention",
         .summary = "BlockBERT: each head's query block reads one key block (identity or one back), causal",
         .keys = {nn::kSparseBlock},
         .test_config = R"({"mixer": "blockwise_attention", "sparse_block": 8})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "blockwise_attention", "sparse_block": 128})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("blockwise_attention", d.causal, d.context_dim);
               kernels::SparsePattern p = nn::blockwise_pattern(c.get(nn::kSparseBlock));
               return std::make_shared<nn::SparseAttention>(
                   nn::SparseAttentionOptions{
                       .dim = d.dim, .heads = d.heads, .name = p.name, .attend = nn::attend_pattern(p)},
                   gen);
             },
         .chunk = 8});
}

}  // namespace tz::zoo
