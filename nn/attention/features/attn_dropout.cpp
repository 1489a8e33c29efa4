// Dropout on the attention probabilities (attn_dropout), as in the Transformer's reference
// code and x-transformers: while training, each weight A_ij is zeroed with probability p and
// the rest scaled by 1 / (1 - p). Stage: probs (a transform; while training it needs the
// materialised weights, so training takes the composite path; evaluation keeps the fused
// kernel). No catalogue id: it is a key of vanilla_mha (and of the dropout_sites model).
#include "autograd/ops.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<double> kAttnDropout{"attn_dropout", 0.0, "dropout on the attention probabilities while training"};

class AttnDropout : public AttentionFeature {
 public:
  explicit AttnDropout(double p) : p_(p) {}
  std::string key() const override { return kAttnDropout.name; }
  std::vector<Hook> hooks() const override { return {{Stage::probs}}; }
  std::string describe() const override { return cat_str(", attn_dropout=", p_); }
  bool needs_scores(const AttentionCall& c) const override { return c.training; }
  Tensor probs(const Attention&, const Tensor& p, const AttentionCall& c) const override {
    return c.training ? dropout(p, p_, true, default_generator()) : p;
  }

 private:
  double p_;
};
}  // namespace

AttentionFeatureInfo attn_feature_attn_dropout() {
  return {.name = "attn_dropout",
          .keys = {kAttnDropout},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const double p = c.get(kAttnDropout);
            TZ_CHECK(p >= 0 && p < 1, "Attention: attn_dropout must be in [0, 1), got ", p);
            return p > 0 ? std::make_shared<AttnDropout>(p) : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_attn_dropout(nn::Registry&) {}  // no catalogue id of its own

}  // namespace tz::zoo
