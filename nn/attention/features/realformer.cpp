// RealFormer's residual scores as an attention feature (realformer.h).
#include "nn/attention/features/realformer.h"

#include "autograd/ops.h"
#include "nn/attention/attention.h"

namespace tz::nn {

Tensor residual_scores(const Tensor& raw, const MixerContext& ctx) {
  if (!ctx.carry) return raw;  // no caller keeps scores: behaves as a first layer
  Tensor sum = raw;
  auto it = ctx.carry->find(kResidualScoresKey);
  if (it != ctx.carry->end()) {
    TZ_CHECK(it->second.shape() == raw.shape(), "realformer (attn_residual): layer ", ctx.layer, " scores ",
             raw.shape(), " cannot add the previous layer's ", it->second.shape(),
             " (every layer needs the same heads)");
    sum = raw + it->second;
  }
  (*ctx.carry)[kResidualScoresKey] = sum;
  return sum;
}

namespace {
const Key<bool> kResidual{"attn_residual", false, "RealFormer: add the previous layer's pre-softmax scores"};

class RealFormer : public AttentionFeature {
 public:
  std::string key() const override { return kResidual.name; }
  std::vector<Hook> hooks() const override { return {{Stage::scores}}; }
  std::string describe() const override { return ", residual"; }
  bool needs_scores(const AttentionCall&) const override { return true; }
  Tensor scores(const Attention&, const Tensor& s, const AttentionCall& c) const override {
    return residual_scores(s, c.ctx);
  }
};
}  // namespace

AttentionFeatureInfo attn_feature_realformer() {
  return {.name = "realformer",
          .keys = {kResidual},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            return c.get(kResidual) ? std::make_shared<RealFormer>() : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_realformer(nn::Registry& r) {
  r.add({.id = "realformer",
         .paper = "arXiv:2012.11747",
         .summary = "Residual attention: each layer adds the previous layer's pre-softmax scores before masking",
         .keys = nn::attention_config_keys("realformer"),
         .test_config = R"({"attn_residual": true})",
         .example = R"({"attn_residual": true})"});
}

}  // namespace tz::zoo
