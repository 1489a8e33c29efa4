#include "nn/attention/score_transforms.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"
#include "nn/registry.h"

namespace tz::nn {

Tensor mix_heads(const Tensor& p, const Tensor& s) {
  TZ_CHECK(s.dim() == 4 && p.dim() == 2 && p.size(0) == s.size(1) && p.size(1) == s.size(1),
           "talking heads: expected a mix [H, H] and scores [B, H, T, S], got ", p.shape(), " and ", s.shape());
  const int64_t B = s.size(0), H = s.size(1), T = s.size(2), S = s.size(3);
  return matmul(p, s.reshape({B, H, T * S})).reshape({B, H, T, S});
}

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

Tensor adaptive_span_mask(const Tensor& z, double ramp, int64_t T, int64_t S, int64_t mask_offset) {
  std::vector<double> dist(size_t(T * S));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < S; ++j) dist[t * S + j] = std::abs(double(mask_offset + t - j));
  Tensor x = from_vector(dist, {1, 1, T, S}).to(z.dtype());
  const int64_t H = z.size(0);
  return clamp((z.view({1, H, 1, 1}) + ramp - x) / ramp, 0.0, 1.0);
}

Tensor adaptive_span_weights(const Tensor& p, const Tensor& z, double ramp, int64_t mask_offset) {
  Tensor w = p * adaptive_span_mask(z, ramp, p.size(2), p.size(3), mask_offset);
  return w / sum(w, {-1}, true);
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
nn::VariantInfo option(const std::string& id, const std::string& paper, const std::string& summary,
                       const std::vector<std::string>& keys, const std::string& test_config,
                       const std::string& family = "attention_core") {
  return {.id = id,
          .family = family,
          .paper = paper,
          .summary = summary,
          .keys = nn::attention_config_keys(keys),
          .test_config = test_config,
          .example = test_config};
}
}  // namespace

void register_talking_heads(nn::Registry& r) {
  r.add(option("talking_heads", "arXiv:2003.02436",
               "Learned H x H mixes of the logits before softmax and of the weights after it (identity init)",
               {"attn_talking_heads"}, R"({"attn_talking_heads": true})"));
}

void register_realformer(nn::Registry& r) {
  r.add(option("realformer", "arXiv:2012.11747",
               "Residual attention: each layer adds the previous layer's pre-softmax scores before masking",
               {"attn_residual"}, R"({"attn_residual": true})"));
}

void register_topk_sparse_attn(nn::Registry& r) {
  r.add(option("topk_sparse_attn", "arXiv:1912.11637",
               "Explicit sparse attention: keep the k largest logits of each row, the rest -inf, then softmax",
               {"attn_sparse_topk"}, R"({"attn_sparse_topk": 4})"));
}

void register_entmax_attn(nn::Registry& r) {
  r.add(option("entmax_attn", "arXiv:1909.00015; EMNLP 2020 (Sparse Text Generation)",
               "alpha-entmax attention (1.5 = entmax15, 2 = sparsemax, exact sort thresholds; bisection otherwise)",
               {"attn_entmax"}, R"({"attn_entmax": 1.5})"));
}

void register_adaptive_span(nn::Registry& r) {
  r.add(option("adaptive_span", "arXiv:1905.07799 (ACL 2019)",
               "Soft span mask clamp((R + z - (i-j)) / R, 0, 1) with a learned span z per head and an L1 penalty",
               {"attn_adaptive_span", "attn_span_ramp", "attn_span_init", "attn_span_penalty"},
               R"({"attn_adaptive_span": 16, "attn_span_ramp": 4, "attn_span_init": 0.55})", "adaptive"));
}

}  // namespace tz::zoo
