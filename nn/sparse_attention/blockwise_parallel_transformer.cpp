// The Blockwise Parallel Transformer: see blockwise_parallel_transformer.h.
#include "nn/sparse_attention/blockwise_parallel_transformer.h"

#include <algorithm>

#include "core/copy.h"
#include "nn/registry.h"

namespace tz::nn {

BlockwiseParallelTransformer::BlockwiseParallelTransformer(int64_t dim, int64_t heads, int64_t block_, Generator& gen)
    : SparseAttention(
          SparseAttentionOptions{.dim = dim,
                                 .heads = heads,
                                 .name = cat_str("blockwise_parallel_transformer(b=", block_, ")"),
                                 .attend = [](const Tensor& q, const Tensor& k, const Tensor& v,
                                              int64_t q_offset) { return attend_masked(q, k, v, q_offset, nullptr); }},
          gen),
      block(block_) {
  TZ_CHECK(block >= 1, "blockwise_parallel_transformer: bpt_block must be >= 1, got ", block);
  norm = register_module("norm", std::make_shared<LayerNorm>(NormOptions{.dim = dim}));
  w1 = register_module("w1", std::make_shared<Linear>(LinearOptions{.in = dim, .out = 4 * dim}, gen));
  w2 = register_module("w2", std::make_shared<Linear>(LinearOptions{.in = 4 * dim, .out = dim}, gen));
}

Tensor BlockwiseParallelTransformer::ffn(const Tensor& z) const {
  return w2->forward(gelu(w1->forward(norm->forward(z))));
}

Tensor BlockwiseParallelTransformer::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  auto [q, k, v, q_offset] = project(x, ctx, state);
  const int64_t B = x.size(0), T = x.size(1);
  std::vector<Tensor> ys;
  for (int64_t i0 = 0; i0 < T; i0 += block) {
    const int64_t n = std::min(block, T - i0), end = q_offset + i0 + n;  // keys the block can see
    Tensor o = attend_masked(q.narrow(2, i0, n), k.narrow(2, 0, end), v.narrow(2, 0, end), q_offset + i0, nullptr);
    Tensor a = out->forward(o.permute({0, 2, 1, 3}).reshape({B, n, options.dim}));
    ys.push_back(a + ffn(x.narrow(1, i0, n) + a));  // the block's FFN at once
  }
  return ys.size() == 1 ? ys[0] : cat(ys, 1);
}

}  // namespace tz::nn

namespace tz::zoo {

void register_blockwise_parallel_transformer(nn::Registry& r) {
  r.add({.id = "blockwise_parallel_transformer",
         .summary = "BPT: per query block, causal attention over its key blocks then the FFN on that block, fused",
         .keys = {nn::kBptBlock},
         .test_config = R"({"mixer": "blockwise_parallel_transformer", "bpt_block": 4, "layout": "ss"})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "blockwise_parallel_transformer", )"
                    R"("bpt_block": 256, "layout": "ssss"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("blockwise_parallel_transformer", d.causal, d.context_dim);
               return std::make_shared<nn::BlockwiseParallelTransformer>(d.dim, d.heads, c.get(nn::kBptBlock), gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
