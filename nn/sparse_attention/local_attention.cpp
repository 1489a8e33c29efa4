// Local attention: see local_attention.h.
#include "nn/sparse_attention/local_attention.h"

#include "nn/registry.h"
#include "nn/sparse_attention/local_mqa.h"

namespace tz::nn {

Attend local_attend(int64_t w) {
  TZ_CHECK(w >= 1, "local_attention: sparse_window must be >= 1, got ", w);
  auto window = std::make_shared<kernels::WindowMask>(w);
  return [window](const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset) {
    return attend_masked(q, k, v, q_offset, window);
  };
}

}  // namespace tz::nn

namespace tz::zoo {

void register_local_attention(nn::Registry& r) {
  r.add({.id = "local_attention",
         .summary = "Sliding-window causal attention: each query sees its w most recent positions (banded kernel)",
         .keys = {nn::kSparseWindow, nn::kSparseKvHeads},
         .test_config = R"({"mixer": "local_attention", "sparse_window": 10})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "local_attention", "sparse_window": 256})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("local_attention", d.causal, d.context_dim);
               const int64_t w = c.get(nn::kSparseWindow), g = c.get(nn::kSparseKvHeads);
               if (g > 0)  // G KV heads, the cache bounded by the window (local_mqa.h)
                 return std::shared_ptr<nn::Mixer>(std::make_shared<nn::LocalMqa>(
                     nn::LocalMqaOptions{.dim = d.dim, .heads = d.heads, .kv_heads = g, .window = w}, gen));
               return std::shared_ptr<nn::Mixer>(std::make_shared<nn::SparseAttention>(
                   nn::SparseAttentionOptions{.dim = d.dim,
                                              .heads = d.heads,
                                              .name = cat_str("local_attention(w=", w, ")"),
                                              .attend = nn::local_attend(w)},
                   gen));
             },
         .chunk = 10});
}

}  // namespace tz::zoo
