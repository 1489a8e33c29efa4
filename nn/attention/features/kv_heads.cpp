// Shared key/value heads (attn_kv_heads): G heads of keys and values read by H query heads,
// query head h reading group floor(h G / H).
//   G = 1: multi-query attention, "Fast Transformer Decoding: One Write-Head is All You
//          Need", Shazeer 2019, arXiv:1911.02150;
//   1 < G < H: grouped-query attention, "GQA: Training Generalized Multi-Query Transformer
//          Models from Multi-Head Checkpoints", Ainslie et al. 2023, arXiv:2305.13245
//          (uptraining an MHA checkpoint: nn::gqa_from_mha).
// The KV cache holds G heads: G/H of MHA's. Stage: projections (it decides the key/value
// head layout, so it replaces the default one). The core hands k, v of G heads to sdpa.
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<int64_t> kKvHeads{"attn_kv_heads", 0,
                            "key/value heads G (1 = multi-query, divides heads = grouped-query; 0 = heads)"};

class KvHeads : public AttentionFeature {
 public:
  explicit KvHeads(int64_t g) : g_(g) {}
  std::string key() const override { return kKvHeads.name; }
  std::vector<Hook> hooks() const override { return {{Stage::projections, true}}; }
  std::string describe() const override { return cat_str(", kv_heads=", g_); }
  void layout(AttentionLayout& L) const override { L.G = L.k_heads = g_; }

 private:
  int64_t g_;
};
}  // namespace

AttentionFeatureInfo attn_feature_kv_heads() {
  return {.name = "kv_heads",
          .keys = {kKvHeads},
          .make = [](const AttentionOptions& o, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const int64_t g = c.get(kKvHeads), H = o.heads;
            TZ_CHECK(g >= 0 && g <= H && (g == 0 || H % g == 0), "Attention: attn_kv_heads (", g,
                     ") must divide heads (", H, ")");
            return g > 0 && g != H ? std::make_shared<KvHeads>(g) : nullptr;  // G = H is plain MHA
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_kv_heads(nn::Registry& r) {
  r.add(
      {.id = "mqa",
       .paper = "arXiv:1911.02150",
       .summary = "Multi-query attention: all query heads share one key/value head (GQA with G = 1); 1/H the KV cache",
       .keys = nn::attention_config_keys("kv_heads"),
       .test_config = R"({"attn_kv_heads": 1})",
       .example = R"({"attn_kv_heads": 1})"});
  r.add({.id = "gqa",
         .paper = "arXiv:2305.13245 (EMNLP 2023)",
         .summary = "Grouped-query attention: G key/value heads, query head i reads group floor(i G / H); MHA -> GQA "
                    "by mean-pooling (nn::gqa_from_mha)",
         .keys = nn::attention_config_keys("kv_heads"),
         .test_config = R"({"heads": 4, "attn_kv_heads": 2})",
         .example = R"({"heads": 4, "attn_kv_heads": 2})"});
}

}  // namespace tz::zoo
