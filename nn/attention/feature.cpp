// The feature list of the attention pipeline and its one conflict rule (feature.h).
#include "nn/attention/feature.h"

#include "core/error.h"

namespace tz::nn {

#define TZ_VARIANT(id)
#define TZ_ATTN_FEATURE(name) AttentionFeatureInfo attn_feature_##name();
#include "nn/attention/variants.def"
#undef TZ_ATTN_FEATURE

const std::vector<AttentionFeatureInfo>& attention_features() {
  static const std::vector<AttentionFeatureInfo> list = {
#define TZ_ATTN_FEATURE(name) attn_feature_##name(),
#include "nn/attention/variants.def"
#undef TZ_ATTN_FEATURE
  };
  return list;
}
#undef TZ_VARIANT

const char* stage_name(Stage s) {
  static const char* names[] = {"projections", "qk",    "cache",  "lead_keys", "scores",
                                "normaliser",  "probs", "values", "output"};
  static_assert(sizeof names / sizeof *names == kStages);
  return names[int(s)];
}

FeatureList make_features(const AttentionOptions& core, const Config& config) {
  FeatureList out;
  for (const AttentionFeatureInfo& info : attention_features())
    if (auto f = info.make(core, config)) out.push_back(std::move(f));
  check_conflicts(out);
  return out;
}

void check_conflicts(const FeatureList& features) {
  const AttentionFeature* owner[kStages] = {};
  for (const auto& f : features)
    for (const Hook& h : f->hooks()) {
      if (!h.replaces) continue;
      const AttentionFeature*& o = owner[int(h.stage)];
      TZ_CHECK(!o, "Attention: '", o ? o->key() : "", "' and '", f->key(), "' conflict: both replace the ",
               stage_name(h.stage), " stage; choose one");
      o = f.get();
    }
}

std::vector<ConfigKey> attention_config_keys() {
  std::vector<ConfigKey> out;
  for (const AttentionFeatureInfo& info : attention_features())
    out.insert(out.end(), info.keys.begin(), info.keys.end());
  return out;
}

std::vector<ConfigKey> attention_config_keys(const std::string& feature) {
  for (const AttentionFeatureInfo& info : attention_features())
    if (info.name == feature) return info.keys;
  throw Error(cat_str("attention_config_keys: no attention feature '", feature, "'"));
}

void check_needs(const Config& c, const ConfigKey& sub, bool on, const ConfigKey& option) {
  TZ_CHECK(!c.has(sub) || on, c.source(), ": '", sub.key, "' needs '", option.key, "'");
}

}  // namespace tz::nn
