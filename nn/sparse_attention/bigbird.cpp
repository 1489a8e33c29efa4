// BigBird's block-sparse attention: see bigbird.h.
#include "nn/sparse_attention/bigbird.h"

#include "nn/registry.h"

namespace tz::zoo {

void register_bigbird(nn::Registry& r) {
  r.add({.id = "bigbird",
         .summary = "BigBird: window of blocks, global blocks and seeded random blocks, one block layout",
         .keys = {nn::kSparseBlock, nn::kSparseWindowBlocks, nn::kSparseGlobal, nn::kSparseRandom, nn::kSparseSeed},
         .test_config = R"({"mixer": "bigbird", "sparse_block": 4, "sparse_window_blocks": 1, "sparse_global": 1, )"
                        R"("sparse_random": 1})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "bigbird", "sparse_block": 64, )"
                    R"("sparse_window_blocks": 1, "sparse_global": 1, "sparse_random": 3})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("bigbird", d.causal, d.context_dim);
               const int64_t b = c.get(nn::kSparseBlock), wb = c.get(nn::kSparseWindowBlocks),
                             gb = c.get(nn::kSparseGlobal), rb = c.get(nn::kSparseRandom);
               const uint64_t seed = uint64_t(c.get(nn::kSparseSeed));
               kernels::bigbird_pattern(b, wb, gb, rb, seed, d.heads, 1);  // checks the keys now
               return std::make_shared<nn::SparseAttention>(
                   nn::SparseAttentionOptions{
                       .dim = d.dim,
                       .heads = d.heads,
                       .name = cat_str("bigbird(b=", b, ", wb=", wb, ", gb=", gb, ", r=", rb, ", seed=", seed, ")"),
                       .attend = nn::attend_pattern(
                           [=](int64_t H, int64_t S) { return kernels::bigbird_pattern(b, wb, gb, rb, seed, H, S); })},
                   gen);
             },
         .chunk = 8});
}

}  // namespace tz::zoo
