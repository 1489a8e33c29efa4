// Sparse Transformer's factorised attention: see sparse_transformer.h.
#include "nn/sparse_attention/sparse_transformer.h"

#include "nn/registry.h"

namespace tz::nn {

kernels::SparsePattern sparse_transformer_pattern(const std::string& pattern, int64_t l, int64_t c,
                                                  const std::string& heads) {
  TZ_CHECK(pattern == "strided" || pattern == "fixed",
           "sparse_transformer: sparse_pattern must be strided or fixed, got '", pattern, "'");
  TZ_CHECK(heads == "merged" || heads == "split", "sparse_transformer: sparse_heads must be merged or split, got '",
           heads, "'");
  const bool split = heads == "split";
  return pattern == "strided" ? kernels::strided_pattern(l, split) : kernels::fixed_pattern(l, c, split);
}

}  // namespace tz::nn

namespace tz::zoo {

void register_sparse_transformer(nn::Registry& r) {
  r.add({.id = "sparse_transformer",
         .summary = "Sparse Transformer: strided or fixed factorised attention, merged or split over heads",
         .keys = {nn::kSparsePattern, nn::kSparseStride, nn::kSparseSummary, nn::kSparseHeads},
         .test_config = R"({"mixer": "sparse_transformer", "sparse_stride": 4, "sparse_summary": 1})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "sparse_transformer", "sparse_stride": 32})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("sparse_transformer", d.causal, d.context_dim);
               kernels::SparsePattern p =
                   nn::sparse_transformer_pattern(c.get(nn::kSparsePattern), c.get(nn::kSparseStride),
                                                  c.get(nn::kSparseSummary), c.get(nn::kSparseHeads));
               return std::make_shared<nn::SparseAttention>(
                   nn::SparseAttentionOptions{.dim = d.dim,
                                              .heads = d.heads,
                                              .name = "sparse_transformer(" + p.name + ")",
                                              .attend = nn::attend_pattern(p)},
                   gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
