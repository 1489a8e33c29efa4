// Poolingformer's two-level attention: see poolingformer.h.
#include "nn/sparse_attention/poolingformer.h"

#include "nn/registry.h"
#include "nn/sparse_attention/memory_compressed_attn.h"

namespace tz::nn {

namespace {
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
}  // namespace

Attend poolingformer_attend(int64_t w1, int64_t w2, int64_t kappa) {
  TZ_CHECK(w1 >= 1 && w2 >= 1 && kappa >= 1,
           "poolingformer: expected sparse_window, pool_window, pool_stride >= 1, got ", w1, ", ", w2, ", ", kappa);
  auto window = std::make_shared<kernels::WindowMask>(w1);
  auto pooled = std::make_shared<MonotoneRangeMask>([w2, kappa](int64_t p) { return floor_div(p - w2, kappa) + 1; },
                                                    [w1, kappa](int64_t p) { return floor_div(p - w1 + 1, kappa) - 1; },
                                                    cat_str("pooled(w2=", w2, ", kappa=", kappa, ")"));
  return [=](const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset) {
    const int64_t B = k.size(0), H = k.size(1), S = k.size(2), D = k.size(3), M = S / kappa;
    std::vector<core::AttentionPart> parts;
    auto m1 = std::make_shared<kernels::AttentionMask>();
    m1->terms = {window};
    parts.push_back({k, v, AttentionSpec{.causal = true, .q_offset = q_offset, .mask = m1}});
    if (M > 0) {
      auto pool = [&](const Tensor& x) { return mean(x.narrow(2, 0, M * kappa).reshape({B, H, M, kappa, D}), {3}); };
      auto m2 = std::make_shared<kernels::AttentionMask>();
      m2->terms = {pooled};
      parts.push_back({pool(k), pool(v), AttentionSpec{.q_offset = q_offset, .mask = m2}});
    }
    return attention_merged(q, parts);
  };
}

}  // namespace tz::nn

namespace tz::zoo {

void register_poolingformer(nn::Registry& r) {
  r.add({.id = "poolingformer",
         .summary = "Poolingformer: sliding window w1 plus mean-pooled complete past windows inside w2, one softmax",
         .keys = {nn::kSparseWindow, nn::kPoolWindow, nn::kPoolStride},
         .test_config = R"({"mixer": "poolingformer", "sparse_window": 4, "pool_window": 16, "pool_stride": 2})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "poolingformer", "sparse_window": 128, )"
                    R"("pool_window": 1024, "pool_stride": 4})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("poolingformer", d.causal, d.context_dim);
               const int64_t w1 = c.get(nn::kSparseWindow), w2 = c.get(nn::kPoolWindow), kappa = c.get(nn::kPoolStride);
               return std::make_shared<nn::SparseAttention>(
                   nn::SparseAttentionOptions{
                       .dim = d.dim,
                       .heads = d.heads,
                       .name = cat_str("poolingformer(w1=", w1, ", w2=", w2, ", kappa=", kappa, ")"),
                       .attend = nn::poolingformer_attend(w1, w2, kappa)},
                   gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
