// SelfExtend's grouped attention as an attention feature (selfextend.h).
#include "nn/attention/features/selfextend.h"

#include "nn/attention/attention.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
const Key<int64_t> kGroup{"attn_selfextend_group", 0,
                          "selfextend: G, the group size of the far positions floor(i / G); 0 = off"};
const Key<int64_t> kWindow{"attn_selfextend_window", 512,
                           "selfextend: w_n, the neighbour window whose distances stay exact"};
}  // namespace

AttentionFeatureInfo attn_feature_selfextend() {
  return {.name = "selfextend",
          .keys = {kGroup, kWindow},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const int64_t G = c.get(kGroup), w = c.get(kWindow);
            check_needs(c, kWindow, G > 0, kGroup);
            TZ_CHECK(G >= 0, c.source(), ": attn_selfextend_group must be >= 0, got ", G);
            TZ_CHECK(w >= 0, c.source(), ": attn_selfextend_window must be >= 0, got ", w);
            if (G == 0) return nullptr;
            return std::make_shared<PositionRemap>(kGroup.name, cat_str(", selfextend(group=", G, ", window=", w, ")"),
                                                   std::make_shared<SelfExtendRule>(G, w));
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_selfextend(nn::Registry& r) {
  r.add({.id = "selfextend",
         .summary =
             "Neighbour keys at their exact distance, far keys at grouped positions floor(i/G) - floor(j/G) + shift",
         .keys = nn::attention_config_keys("selfextend"),
         .test_config = R"({"pos": "rope", "attn_selfextend_group": 2, "attn_selfextend_window": 8})",
         .example = R"({"pos": "rope", "attn_selfextend_group": 4, "attn_selfextend_window": 512})",
         .chunk = 8});
}

}  // namespace tz::zoo
