// Top-k sparse attention as an attention feature (topk.h).
#include "nn/attention/features/topk.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"

namespace tz::nn {

Tensor topk_mask(const Tensor& scores, int64_t k) {
  const int64_t S = scores.size(-1);
  if (k >= S) return scores;
  std::vector<double> s = scores.to_vector<double>();
  std::vector<int64_t> mask(s.size(), 0);
  std::vector<double> row(static_cast<size_t>(S));
  for (size_t r = 0; r * S < s.size(); ++r) {
    std::copy(s.begin() + r * S, s.begin() + (r + 1) * S, row.begin());
    // the k-th largest value of the row is the threshold
    std::nth_element(row.begin(), row.begin() + (k - 1), row.end(), std::greater<double>());
    double thr = row[size_t(k - 1)];
    for (int64_t j = 0; j < S; ++j) mask[r * S + j] = s[r * S + j] < thr;
  }
  return masked_fill(scores, from_vector(mask, scores.shape()), -std::numeric_limits<double>::infinity());
}

namespace {
const Key<int64_t> kTopk{"attn_sparse_topk", 0, "keep the k largest logits per query (the paper uses 8); 0 = dense"};

class TopK : public AttentionFeature {
 public:
  explicit TopK(int64_t k) : k_(k) {}
  std::string key() const override { return kTopk.name; }
  std::vector<Hook> hooks() const override { return {{Stage::normaliser, true}}; }
  std::string describe() const override { return cat_str(", topk=", k_); }
  void sdpa_spec(const Attention&, SdpaSpec& s, const Tensor&, const Tensor&, const AttentionCall&) const override {
    s.topk = k_;
  }
  // The core has hidden all but the top k already (topk_mask on the composite path).
  Tensor normalise(const Attention&, const Tensor& s, const AttentionCall&) const override { return softmax(s); }

 private:
  int64_t k_;
};
}  // namespace

AttentionFeatureInfo attn_feature_topk() {
  return {.name = "topk",
          .keys = {kTopk},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            const int64_t k = c.get(kTopk);
            TZ_CHECK(k >= 0, "Attention: attn_sparse_topk must be >= 0, got ", k);
            return k > 0 ? std::make_shared<TopK>(k) : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_topk(nn::Registry& r) {
  r.add({.id = "topk_sparse_attn",
         .paper = "arXiv:1912.11637",
         .summary = "Explicit sparse attention: keep the k largest logits of each row, the rest -inf, then softmax",
         .keys = nn::attention_config_keys("topk"),
         .test_config = R"({"attn_sparse_topk": 4})",
         .example = R"({"attn_sparse_topk": 4})"});
}

}  // namespace tz::zoo
