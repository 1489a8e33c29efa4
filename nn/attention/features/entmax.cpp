// alpha-entmax attention (attn_entmax). "Adaptively Sparse Transformers", Correia et al. 2019,
// arXiv:1909.00015: alpha-entmax replaces softmax,
//   p = argmax_{p in simplex} p.z + H_alpha(p)  =  [(alpha - 1) z - tau]_+^{1/(alpha - 1)},
// sparse for alpha > 1 (1.5 = entmax15, 2 = sparsemax); the op is tz::entmax
// (autograd/ops_entmax.cpp). Not done: a learned alpha per head.
// Stage: normaliser (replaces softmax; needs the materialised scores).
#include <cmath>

#include "autograd/ops.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<double> kEntmax{"attn_entmax", 0.0,
                          "alpha-entmax normaliser: 1.5 (entmax15), 2 (sparsemax) or any alpha > 1; 0 = softmax"};

class Entmax : public AttentionFeature {
 public:
  explicit Entmax(double alpha) : alpha_(alpha) {}
  std::string key() const override { return kEntmax.name; }
  std::vector<Hook> hooks() const override { return {{Stage::normaliser, true}}; }
  std::string describe() const override { return cat_str(", entmax=", alpha_); }
  bool needs_scores(const AttentionCall&) const override { return true; }
  Tensor normalise(const Attention&, const Tensor& s, const AttentionCall&) const override { return entmax(s, alpha_); }

 private:
  double alpha_;
};
}  // namespace

AttentionFeatureInfo attn_feature_entmax() {
  return {.name = "entmax",
          .keys = {kEntmax},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const double alpha = c.get(kEntmax);
            TZ_CHECK(alpha == 0 || (alpha > 1 && std::isfinite(alpha)),
                     "Attention: attn_entmax must be 0 (softmax) "
                     "or an alpha > 1 (1.5 = entmax15, 2 = sparsemax), got ",
                     alpha);
            return alpha > 0 ? std::make_shared<Entmax>(alpha) : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_entmax(nn::Registry& r) {
  r.add(
      {.id = "entmax_attn",
       .paper = "arXiv:1909.00015; EMNLP 2020 (Sparse Text Generation)",
       .summary = "alpha-entmax attention (1.5 = entmax15, 2 = sparsemax, exact sort thresholds; bisection otherwise)",
       .keys = nn::attention_config_keys("entmax"),
       .test_config = R"({"attn_entmax": 1.5})",
       .example = R"({"attn_entmax": 1.5})"});
}

}  // namespace tz::zoo
