// LongNet's dilated attention: see longnet_dilated.h.
#include "nn/sparse_attention/longnet_dilated.h"

#include "nn/registry.h"

namespace tz::nn {

Attend longnet_attend(int64_t w0, int64_t branches) {
  TZ_CHECK(w0 >= 1 && branches >= 1, "longnet_dilated: expected sparse_segment >= 1 and sparse_branches >= 1, got ", w0,
           " and ", branches);
  std::vector<std::shared_ptr<kernels::LayoutCache>> caches;
  for (int64_t n = 0; n < branches; ++n)
    caches.push_back(
        std::make_shared<kernels::LayoutCache>(kernels::segment_dilated_pattern(w0 << n, int64_t(1) << n)));
  return [caches](const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset) {
    std::vector<core::AttentionPart> parts;
    for (const auto& c : caches) {
      auto mask = std::make_shared<kernels::AttentionMask>();
      mask->terms = {c->get(q.size(1), k.size(2))};
      parts.push_back({k, v, AttentionSpec{.causal = true, .q_offset = q_offset, .mask = mask}});
    }
    return attention_merged(q, parts);
  };
}

}  // namespace tz::nn

namespace tz::zoo {

void register_longnet_dilated(nn::Registry& r) {
  r.add({.id = "longnet_dilated",
         .summary = "LongNet dilated attention: segment/dilation branches (w_0 2^n, 2^n) merged by log-sum-exp",
         .keys = {nn::kSparseSegment, nn::kSparseBranches},
         .test_config = R"({"mixer": "longnet_dilated", "sparse_segment": 8, "sparse_branches": 2})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "longnet_dilated", "sparse_segment": 256, )"
                    R"("sparse_branches": 4})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("longnet_dilated", d.causal, d.context_dim);
               const int64_t w0 = c.get(nn::kSparseSegment), n = c.get(nn::kSparseBranches);
               return std::make_shared<nn::SparseAttention>(
                   nn::SparseAttentionOptions{.dim = d.dim,
                                              .heads = d.heads,
                                              .name = cat_str("longnet_dilated(w0=", w0, ", branches=", n, ")"),
                                              .attend = nn::longnet_attend(w0, n)},
                   gen);
             },
         .chunk = 8});
}

}  // namespace tz::zoo
