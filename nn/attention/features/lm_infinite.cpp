// LM-Infinite's Λ-shaped mask and distance limit as an attention feature (lm_infinite.h).
#include "nn/attention/features/lm_infinite.h"

#include "nn/attention/attention.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
const Key<int64_t> kLocal{"attn_lambda_local", 0,
                          "lm_infinite: L_local, the most recent tokens each query attends; 0 = off"};
const Key<int64_t> kGlobal{"attn_lambda_global", 10, "lm_infinite: n_global, the first tokens every query attends"};
const Key<int64_t> kCeiling{"attn_lambda_ceiling", 0,
                            "lm_infinite: L_pretrain, the largest relative distance used; 0 = attn_lambda_local"};
}  // namespace

AttentionFeatureInfo attn_feature_lm_infinite() {
  return {.name = "lm_infinite",
          .keys = {kLocal, kGlobal, kCeiling},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const int64_t local = c.get(kLocal), global = c.get(kGlobal), given = c.get(kCeiling);
            check_needs(c, kGlobal, local > 0, kLocal);
            check_needs(c, kCeiling, local > 0, kLocal);
            TZ_CHECK(local >= 0, c.source(), ": attn_lambda_local must be >= 0, got ", local);
            TZ_CHECK(global >= 0, c.source(), ": attn_lambda_global must be >= 0, got ", global);
            TZ_CHECK(given >= 0, c.source(), ": attn_lambda_ceiling must be >= 0 (0 = attn_lambda_local), got ", given);
            if (local == 0) return nullptr;
            const int64_t ceiling = given > 0 ? given : local;
            return std::make_shared<PositionRemap>(
                kLocal.name, cat_str(", lambda(global=", global, ", local=", local, ", ceiling=", ceiling, ")"),
                std::make_shared<LambdaRule>(global, local, ceiling));
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_lm_infinite(nn::Registry& r) {
  r.add(
      {.id = "lm_infinite",
       .summary = "Λ-shaped mask (first n_global + last L_local keys) and relative distances capped at L_pretrain",
       .keys = nn::attention_config_keys("lm_infinite"),
       // The global keys are clipped past distance 9 in the checks; copy's distance 8 stays exact.
       .test_config = R"({"pos": "rope", "attn_lambda_local": 10, "attn_lambda_global": 2, "attn_lambda_ceiling": 9})",
       .example = R"({"pos": "rope", "attn_lambda_local": 4096, "attn_lambda_global": 10})",
       .chunk = 12});
}

}  // namespace tz::zoo
