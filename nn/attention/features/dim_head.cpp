// Decoupled head size (attn_dim_head). "Low-Rank Bottleneck in Multi-head Attention Models",
// Bhojanapalli et al. 2020, arXiv:2002.07028: the head size D is set apart from C / H, so
// W_q, W_k, W_v: C -> H D and W_o: H D -> C (with H D < C each head's rank is no longer
// capped by C / H). Stage: projections (sizes only).
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<int64_t> kDimHead{"attn_dim_head", 0, "per-head size D, independent of dim / heads (0 = dim / heads)"};

class DimHead : public AttentionFeature {
 public:
  explicit DimHead(int64_t d) : d_(d) {}
  std::string key() const override { return kDimHead.name; }
  std::vector<Hook> hooks() const override { return {{Stage::projections}}; }
  std::string describe() const override { return cat_str(", dim_head=", d_); }
  void layout(AttentionLayout& L) const override { L.D = L.Dk = d_; }

 private:
  int64_t d_;
};
}  // namespace

AttentionFeatureInfo attn_feature_dim_head() {
  return {.name = "dim_head",
          .keys = {kDimHead},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const int64_t d = c.get(kDimHead);
            TZ_CHECK(d >= 0, "Attention: attn_dim_head must be >= 0, got ", d);
            return d > 0 ? std::make_shared<DimHead>(d) : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_dim_head(nn::Registry& r) {
  r.add({.id = "head_dim_decoupled",
         .paper = "arXiv:2002.07028",
         .summary = "Per-head size D set apart from dim / heads: W_q, W_k, W_v: C -> H D, W_o: H D -> C",
         .keys = nn::attention_config_keys("dim_head"),
         .test_config = R"({"attn_dim_head": 12})",
         .example = R"({"attn_dim_head": 12})"});
}

}  // namespace tz::zoo
