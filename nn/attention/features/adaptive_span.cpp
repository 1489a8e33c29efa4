// Adaptive attention span as an attention feature (adaptive_span.h).
#include "nn/attention/features/adaptive_span.h"

#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"

namespace tz::nn {

Tensor adaptive_span_mask(const Tensor& z, double ramp, int64_t T, int64_t S, int64_t q_offset) {
  std::vector<double> dist(size_t(T * S));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < S; ++j) dist[t * S + j] = std::abs(double(q_offset + t - j));
  Tensor x = from_vector(dist, {1, 1, T, S}).to(z.dtype());
  const int64_t H = z.size(0);
  return clamp((z.view({1, H, 1, 1}) + ramp - x) / ramp, 0.0, 1.0);
}

Tensor adaptive_span_weights(const Tensor& p, const Tensor& z, double ramp, int64_t q_offset) {
  Tensor w = p * adaptive_span_mask(z, ramp, p.size(2), p.size(3), q_offset);
  return w / sum(w, {-1}, true);
}

namespace {
const Key<int64_t> kSpan{"attn_adaptive_span", 0,
                         "adaptive span: the longest span S of the learned soft mask; 0 = off"};
const Key<double> kRamp{"attn_span_ramp", 8.0, "adaptive span: ramp length R of the soft mask"};
const Key<double> kInit{"attn_span_init", 0.5, "adaptive span: initial z / S per head, in [0, 1]"};
const Key<double> kPenalty{"attn_span_penalty", 2e-6,
                           "adaptive span: coefficient of the L1 penalty on the spans (aux loss)"};

class AdaptiveSpan : public AttentionFeature {
 public:
  AdaptiveSpan(int64_t max_span, double ramp, double init, double penalty)
      : max_span_(max_span), ramp_(ramp), init_(init), penalty_(penalty) {}
  std::string key() const override { return kSpan.name; }
  std::vector<Hook> hooks() const override { return {{Stage::normaliser, true}}; }
  std::string describe() const override { return cat_str(", span=", max_span_); }
  bool needs_scores(const AttentionCall&) const override { return true; }
  void build(Attention& a, Generator&) const override { a.add_parameter("span", full({a.layout.H}, init_)); }
  Tensor normalise(const Attention& a, const Tensor& s, const AttentionCall& c) const override {
    return adaptive_span_weights(softmax(s), clamp(a.param("span"), 0.0, 1.0) * double(max_span_), ramp_, c.q_offset);
  }
  void aux_loss(const Attention& a, const MixerContext& ctx) const override {
    if (ctx.aux)  // L1 penalty on the spans z_h
      ctx.aux->add("adaptive_span", sum(clamp(a.param("span"), 0.0, 1.0)) * (double(max_span_) * penalty_));
  }

 private:
  int64_t max_span_;
  double ramp_, init_, penalty_;
};
}  // namespace

AttentionFeatureInfo attn_feature_adaptive_span() {
  return {.name = "adaptive_span",
          .keys = {kSpan, kRamp, kInit, kPenalty},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const int64_t span = c.get(kSpan);
            const double ramp = c.get(kRamp), init = c.get(kInit), penalty = c.get(kPenalty);
            for (const ConfigKey& k : std::vector<ConfigKey>{kRamp, kInit, kPenalty})
              check_needs(c, k, span > 0, kSpan);
            TZ_CHECK(span >= 0, "Attention: attn_adaptive_span must be >= 0, got ", span);
            TZ_CHECK(ramp > 0, "Attention: attn_span_ramp must be > 0, got ", ramp);
            TZ_CHECK(init >= 0 && init <= 1, "Attention: attn_span_init must be in [0, 1], got ", init);
            TZ_CHECK(penalty >= 0, "Attention: attn_span_penalty must be >= 0, got ", penalty);
            return span > 0 ? std::make_shared<AdaptiveSpan>(span, ramp, init, penalty) : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_adaptive_span(nn::Registry& r) {
  r.add({.id = "adaptive_span",
         .paper = "arXiv:1905.07799 (ACL 2019)",
         .summary = "Soft span mask clamp((R + z - (i-j)) / R, 0, 1) with a learned span z per head and an L1 penalty",
         .keys = nn::attention_config_keys("adaptive_span"),
         .test_config = R"({"attn_adaptive_span": 16, "attn_span_ramp": 4, "attn_span_init": 0.55})",
         .example = R"({"attn_adaptive_span": 16, "attn_span_ramp": 4, "attn_span_init": 0.55})"});
}

}  // namespace tz::zoo
