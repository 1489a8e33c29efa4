// Talking heads as an attention feature (talking_heads.h).
#include "nn/attention/features/talking_heads.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"

namespace tz::nn {

Tensor mix_heads(const Tensor& p, const Tensor& s) {
  TZ_CHECK(s.dim() == 4 && p.dim() == 2 && p.size(0) == s.size(1) && p.size(1) == s.size(1),
           "talking heads: expected a mix [H, H] and scores [B, H, T, S], got ", p.shape(), " and ", s.shape());
  const int64_t B = s.size(0), H = s.size(1), T = s.size(2), S = s.size(3);
  return matmul(p, s.reshape({B, H, T * S})).reshape({B, H, T, S});
}

namespace {
const Key<bool> kTalkingHeads{"attn_talking_heads", false, "learned heads x heads mixes before and after the softmax"};

class TalkingHeads : public AttentionFeature {
 public:
  std::string key() const override { return kTalkingHeads.name; }
  std::vector<Hook> hooks() const override { return {{Stage::scores}, {Stage::probs}}; }
  std::string describe() const override { return ", talking_heads"; }
  bool needs_scores(const AttentionCall&) const override { return true; }
  void build(Attention& a, Generator&) const override {
    a.add_parameter("pre_mix", eye(a.layout.H));
    a.add_parameter("post_mix", eye(a.layout.H));
  }
  Tensor scores(const Attention& a, const Tensor& s, const AttentionCall&) const override {
    return mix_heads(a.param("pre_mix"), s);  // still unmasked
  }
  Tensor probs(const Attention& a, const Tensor& p, const AttentionCall&) const override {
    return mix_heads(a.param("post_mix"), p);
  }
};
}  // namespace

AttentionFeatureInfo attn_feature_talking_heads() {
  return {.name = "talking_heads",
          .keys = {kTalkingHeads},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            return c.get(kTalkingHeads) ? std::make_shared<TalkingHeads>() : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_talking_heads(nn::Registry& r) {
  r.add({.id = "talking_heads",
         .paper = "arXiv:2003.02436",
         .summary = "Learned H x H mixes of the logits before softmax and of the weights after it (identity init)",
         .keys = nn::attention_config_keys("talking_heads"),
         .test_config = R"({"attn_talking_heads": true})",
         .example = R"({"attn_talking_heads": true})"});
}

}  // namespace tz::zoo
