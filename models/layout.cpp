#include "models/layout.h"

#include "core/text.h"
#include "models/keys.h"

namespace tz::models {

namespace {
SublayerSpec mixer_sublayer() {
  return {.kind = SublayerSpec::Kind::mixer, .name = "mixer", .norm_name = "norm1", .tag = "1"};
}
SublayerSpec ffn_sublayer(bool first_half) {
  return first_half ? SublayerSpec{.kind = SublayerSpec::Kind::ffn, .name = "ffn0", .norm_name = "norm0", .tag = "0"}
                    : SublayerSpec{.kind = SublayerSpec::Kind::ffn, .name = "ffn", .norm_name = "norm2", .tag = "2"};
}
}  // namespace

std::vector<std::vector<SublayerSpec>> plan_layout(const nn::Config& c, const nn::ModelDims& dims, bool shared) {
  const std::string src = c.source(), layout = c.get(kLayout);
  const int64_t n = dims.depth, k = c.get(kSandwichCoef);
  const bool macaron = c.get(kMacaron);
  TZ_CHECK(layout == "sandwich" || !c.has(kSandwichCoef.name), src, ": sandwich_coef needs layout 'sandwich'");
  TZ_CHECK(!shared || layout == "interleaved", src, ": share_layers/act need layout 'interleaved', got '", layout, "'");
  TZ_CHECK(!macaron || layout == "interleaved", src, ": macaron needs layout 'interleaved', got '", layout, "'");

  // (has mixer, has FFN) per block.
  std::vector<std::pair<bool, bool>> plan;
  if (layout == "interleaved") {
    plan.assign(size_t(shared ? 1 : n), {true, true});
  } else if (layout == "sandwich") {
    TZ_CHECK(k >= 0 && k <= n, src, ": sandwich_coef must be in [0, depth = ", n, "], got ", k);
    for (int64_t i = 0; i < k; ++i) plan.push_back({true, false});
    for (int64_t i = k; i < n; ++i) plan.push_back({true, true});
    for (int64_t i = 0; i < k; ++i) plan.push_back({false, true});
  } else {
    for (size_t i = 0; i < layout.size(); ++i) {
      TZ_CHECK(layout[i] == 's' || layout[i] == 'f', src,
               ": layout must be interleaved, sandwich or a string of "
               "'s' and 'f', got '",
               layout, "'");
      if (layout[i] == 's' && i + 1 < layout.size() && layout[i + 1] == 'f')
        plan.push_back({true, true}), ++i;
      else
        plan.push_back({layout[i] == 's', layout[i] == 'f'});
    }
    TZ_CHECK(!plan.empty(), src, ": layout is empty");
  }

  const std::vector<std::string> mixers = c.get(kMixer);
  int64_t n_mixers = 0;
  for (auto& p : plan) n_mixers += p.first;
  TZ_CHECK(mixers.size() == 1 || int64_t(mixers.size()) == n_mixers, src, ": 'mixer' lists ", mixers.size(),
           " ids for ", n_mixers, " mixer sublayers (give one id, or one per mixer sublayer)");
  const std::string ffn = c.get(kFfn);

  std::vector<std::vector<SublayerSpec>> blocks;
  size_t mi = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    nn::ModelDims d = dims;
    d.layer = int64_t(i);
    const auto [has_mixer, has_ffn] = plan[i];
    const bool half = macaron && has_mixer && has_ffn;
    std::vector<SublayerSpec> block;
    if (half) block.push_back(ffn_sublayer(true));
    if (has_mixer) {
      block.push_back(mixer_sublayer());
      block.back().id = mixers[mixers.size() == 1 ? 0 : mi++];
    }
    if (has_ffn) block.push_back(ffn_sublayer(false));
    for (SublayerSpec& s : block) {
      s.dims = d;
      if (s.kind == SublayerSpec::Kind::ffn) s.id = ffn;
      if (half && s.kind == SublayerSpec::Kind::ffn) s.scale = 0.5;  // each FFN takes half a step
    }
    blocks.push_back(std::move(block));
  }
  return blocks;
}

std::vector<nn::ConfigKey> layout_keys() { return {kLayout, kSandwichCoef, kMacaron}; }

}  // namespace tz::models

namespace tz::zoo {

void register_sandwich_transformer(nn::Registry& r) {
  r.add({.id = "sandwich_transformer",
         .summary = "Sublayer order s^k (sf)^(n-k) f^k with sandwich coefficient k",
         .keys = {models::kLayout, models::kSandwichCoef},
         .test_config = R"({"layout": "sandwich", "sandwich_coef": 1})",
         .example = R"({"depth": 16, "layout": "sandwich", "sandwich_coef": 6})"});
}

void register_macaron(nn::Registry& r) {
  r.add({.id = "macaron",
         .summary = "x += ½FFN(x); x += Attn(x); x += ½FFN(x), each with its own norm and parameters",
         .keys = {models::kMacaron},
         .test_config = R"({"macaron": true})",
         .example = R"({"macaron": true})"});
}

}  // namespace tz::zoo
