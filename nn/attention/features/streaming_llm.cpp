// StreamingLLM's attention sinks as an attention feature (streaming_llm.h).
#include "nn/attention/features/streaming_llm.h"

#include "nn/attention/attention.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
const Key<int64_t> kWindow{"attn_sink_window", 0,
                           "streaming_llm: w, the most recent tokens the KV cache keeps (with the sinks); 0 = off"};
const Key<int64_t> kSinks{"attn_sink_tokens", 4,
                          "streaming_llm: s, the first tokens kept as attention sinks; 0 = window only"};
}  // namespace

AttentionFeatureInfo attn_feature_streaming_llm() {
  return {.name = "streaming_llm",
          .keys = {kWindow, kSinks},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const int64_t w = c.get(kWindow), s = c.get(kSinks);
            check_needs(c, kSinks, w > 0, kWindow);
            TZ_CHECK(w >= 0, c.source(), ": attn_sink_window must be >= 0, got ", w);
            TZ_CHECK(s >= 0, c.source(), ": attn_sink_tokens must be >= 0, got ", s);
            if (w == 0) return nullptr;
            return std::make_shared<PositionRemap>(kWindow.name, cat_str(", sinks=", s, ", window=", w),
                                                   std::make_shared<StreamingRule>(s, w));
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_streaming_llm(nn::Registry& r) {
  r.add({.id = "streaming_llm",
         .summary = "Attention sinks: the cache keeps the first s and the last w tokens, positions taken in the cache",
         .keys = nn::attention_config_keys("streaming_llm"),
         .test_config = R"({"pos": "rope", "attn_sink_window": 10})",
         .example = R"({"pos": "rope", "attn_sink_window": 1020, "attn_sink_tokens": 4})",
         // s + w: the causal and step checks run past the first eviction.
         .chunk = 14});
}

}  // namespace tz::zoo
