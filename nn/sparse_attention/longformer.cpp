// Longformer's attention: see longformer.h.
#include "nn/sparse_attention/longformer.h"

#include "nn/registry.h"

namespace tz::zoo {

void register_longformer(nn::Registry& r) {
  r.add(
      {.id = "longformer",
       .summary = "Longformer: sliding window with per-head dilation plus a global-token prefix (one layout)",
       .keys = {nn::kSparseWindow, nn::kSparseDilations, nn::kSparseGlobal},
       .test_config = R"({"mixer": "longformer", "sparse_window": 10, "sparse_dilations": [1, 2], "sparse_global": 2})",
       .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "longformer", "sparse_window": 128, )"
                  R"("sparse_dilations": [1, 1, 2, 4], "sparse_global": 4})",
       .mixer =
           [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
             nn::check_causal_self("longformer", d.causal, d.context_dim);
             kernels::SparsePattern p = kernels::longformer_pattern(
                 c.get(nn::kSparseWindow), c.get(nn::kSparseDilations), c.get(nn::kSparseGlobal));
             return std::make_shared<nn::SparseAttention>(
                 nn::SparseAttentionOptions{
                     .dim = d.dim, .heads = d.heads, .name = p.name, .attend = nn::attend_pattern(p)},
                 gen);
           },
       .chunk = 10});
}

}  // namespace tz::zoo
