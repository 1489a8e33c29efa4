// The Low-Rank Transformer's `linear_rank` key; see low_rank.h (the factored Linear is
// nn/low_rank.h, opened around the blocks by models/lm.cpp).
#include "models/low_rank.h"

#include "core/text.h"
#include "nn/registry.h"

namespace tz::models {

int64_t read_linear_rank(const nn::Config& config) {
  const int64_t rank = config.get(kLinearRank);
  TZ_CHECK(rank >= 0, config.source(), ": linear_rank must be ≥ 0 (0: dense), got ", rank);
  return rank;
}

}  // namespace tz::models

namespace tz::zoo {

void register_low_rank_transformer(nn::Registry& r) {
  r.add({.id = "low_rank_transformer",
         .summary = "Low-Rank Transformer: every Linear of the blocks factorised W = V U of rank r, r (in + out) "
                    "weights instead of in · out",
         .keys = {models::kLinearRank},
         .test_config = R"({"linear_rank": 8})",
         .example = R"({"linear_rank": 64, "dim": 512})"});
}

}  // namespace tz::zoo
