// Sparse Distributed Memory reads: see sdm.h.
#include "nn/approx_attention/sdm.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
double log_choose(int64_t n, int64_t k) {
  return std::lgamma(double(n) + 1) - std::lgamma(double(k) + 1) - std::lgamma(double(n - k) + 1);
}
}  // namespace

double sdm_log_intersection(int64_t n, int64_t d, int64_t h) {
  TZ_CHECK(n >= 1 && d >= 0 && d <= n && h >= 0 && h <= n, "sdm: need 0 <= d <= n and 0 <= h <= n, got n ", n, ", d ",
           d, ", h ", h);
  // Terms summed in log space (they reach C(n, d), far beyond 2^53 for n in the hundreds).
  double best = -INFINITY;
  std::vector<double> terms;
  for (int64_t k = 0; k <= std::min(d, n - h); ++k)
    for (int64_t l = 0; l <= h && k + l <= d; ++l) {
      if (k + h - l > d) continue;
      terms.push_back(log_choose(n - h, k) + log_choose(h, l));
      best = std::max(best, terms.back());
    }
  if (terms.empty()) return -INFINITY;
  double s = 0;
  for (double t : terms) s += std::exp(t - best);
  return best + std::log(s);
}

Tensor sdm_weights(const Tensor& patterns, const Tensor& query, int64_t d) {
  TZ_CHECK(patterns.dim() == 2 && query.dim() == 1 && query.size(0) == patterns.size(1),
           "sdm_weights: expected patterns [M, n] and query [n], got ", patterns.shape(), " and ", query.shape());
  const int64_t M = patterns.size(0), n = patterns.size(1);
  const std::vector<double> p = patterns.to_vector<double>(), q = query.to_vector<double>();
  for (double x : p) TZ_CHECK(x == 0 || x == 1, "sdm_weights: pattern entries must be 0 or 1, got ", x);
  for (double x : q) TZ_CHECK(x == 0 || x == 1, "sdm_weights: query entries must be 0 or 1, got ", x);
  std::vector<double> logw(static_cast<size_t>(M));
  double best = -INFINITY;
  for (int64_t mu = 0; mu < M; ++mu) {
    int64_t h = 0;
    for (int64_t i = 0; i < n; ++i) h += p[size_t(mu * n + i)] != q[size_t(i)];
    logw[size_t(mu)] = sdm_log_intersection(n, d, h);
    best = std::max(best, logw[size_t(mu)]);
  }
  TZ_CHECK(best > -INFINITY, "sdm_weights: no pattern within 2d = ", 2 * d, " of the query: the read is empty");
  double s = 0;
  for (double& w : logw) s += (w = std::exp(w - best));
  for (double& w : logw) w /= s;
  return from_vector(logw, {M});
}

Tensor sdm_read(const Tensor& patterns, const Tensor& values, const Tensor& query, int64_t d) {
  TZ_CHECK(values.dim() == 2 && values.size(0) == patterns.size(0), "sdm_read: expected values [", patterns.size(0),
           ", Dv], got ", values.shape());
  return matmul(sdm_weights(patterns, query, d).to(values.dtype()).unsqueeze(0), values).squeeze(0);
}

double sdm_fit_beta(int64_t n, int64_t d) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0, count = 0;
  for (int64_t h = 0; h <= d; ++h) {
    const double x = 1.0 - 2.0 * double(h) / double(n), y = sdm_log_intersection(n, d, h);
    sx += x, sy += y, sxx += x * x, sxy += x * y, count += 1;
  }
  TZ_CHECK(count >= 2, "sdm_fit_beta: needs d >= 1, got ", d);
  return (count * sxy - sx * sy) / (count * sxx - sx * sx);
}

}  // namespace tz::nn

namespace tz::zoo {

void register_sdm_attention(nn::Registry& r) {
  r.add({.id = "sdm_attention",
         .summary = "Study: SDM reads (Hamming-ball intersections) against softmax(beta cos) attention; the model is "
                    "attention with unit-norm queries and keys and a learned beta (qk_norm)",
         .test_config = R"({"attn_qk_norm": true})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "attn_qk_norm": true})"});
}

}  // namespace tz::zoo
