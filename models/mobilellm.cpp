#include "models/mobilellm.h"

#include "core/error.h"
#include "nn/registry.h"

namespace tz::models {

std::vector<int64_t> repeat_schedule(const nn::Config& config, int64_t blocks, bool shared) {
  const int64_t repeat = config.get(kBlockRepeat);
  TZ_CHECK(repeat >= 1, config.source(), ": block_repeat must be ≥ 1, got ", repeat);
  TZ_CHECK(repeat == 1 || !shared, config.source(),
           ": block_repeat repeats each block of a stack; with share_layers / act the one shared block already "
           "repeats (use recurrence_steps)");
  std::vector<int64_t> schedule;
  for (int64_t b = 0; b < blocks; ++b) schedule.insert(schedule.end(), size_t(repeat), b);
  return schedule;
}

}  // namespace tz::models

namespace tz::zoo {

void register_mobilellm(nn::Registry& r) {
  r.add({.id = "mobilellm",
         .summary = "MobileLLM-LS: deep-thin SwiGLU + GQA decoder, tied embeddings, each block run twice back to back",
         .keys = {models::kBlockRepeat},
         .test_config = R"({"block_repeat": 2, "ffn": "glu_variants", "ffn_glu": "swiglu", "attn_kv_heads": 1})",
         .example = R"({"block_repeat": 2, "depth": 30, "dim": 576, "heads": 9, "attn_kv_heads": 3, )"
                    R"("ffn": "glu_variants", "ffn_glu": "swiglu", "tie_weights": true})"});
}

}  // namespace tz::zoo
