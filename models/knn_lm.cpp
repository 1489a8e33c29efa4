// kNN-LM: see knn_lm.h.
#include "models/knn_lm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/registry.h"

namespace tz::models {

namespace {
float squared_distance(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

bool nearer(const Neighbor& a, const Neighbor& b) {
  return a.distance < b.distance || (a.distance == b.distance && a.index < b.index);
}

// Runs the LM over tokens[start, start + n) and returns logits [n, V] and features [n, C].
std::pair<Tensor, Tensor> run_window(LM& lm, const std::vector<int64_t>& tokens, int64_t start, int64_t n) {
  Tensor features;
  lm.feature_tap = [&](const Tensor& x) { features = x.detach(); };
  std::vector<int64_t> ids(tokens.begin() + start, tokens.begin() + start + n);
  Tensor logits = lm.forward({from_vector(ids, {1, n})});
  lm.feature_tap = nullptr;
  TZ_CHECK(features.defined(), "kNN-LM: the model gave no features");
  return {logits.select(0, 0).detach(), features.select(0, 0).to(DType::f32).contiguous()};
}

double log_add(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  const double m = std::max(a, b);
  return m + std::log(std::exp(a - m) + std::exp(b - m));
}
}  // namespace

void KnnOptions::validate() const {
  TZ_CHECK(k >= 1, "kNN-LM: k must be >= 1, got ", k);
  TZ_CHECK(lambda >= 0 && lambda <= 1, "kNN-LM: lambda must be in [0, 1], got ", lambda);
  TZ_CHECK(temperature > 0, "kNN-LM: temperature must be > 0, got ", temperature);
  TZ_CHECK(nprobe >= 0, "kNN-LM: nprobe must be >= 0 (0 = exhaustive), got ", nprobe);
}

KnnDatastore KnnDatastore::build(LM& lm, const std::vector<int64_t>& tokens, int64_t window,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  TZ_CHECK(window >= 1 && window <= lm.context(), "kNN-LM: window must be in [1, ", lm.context(), "], got ", window);
  TZ_CHECK(tokens.size() >= 2, "kNN-LM: a datastore needs at least 2 tokens, got ", tokens.size());
  NoGradGuard no_grad;
  KnnDatastore s;
  const int64_t n = int64_t(tokens.size()) - 1, windows = (n + window - 1) / window;
  for (int64_t w = 0; w < windows; ++w) {
    const int64_t start = w * window, len = std::min(window, n - start);
    auto [logits, features] = run_window(lm, tokens, start, len);
    s.dim = features.size(1);
    const float* f = features.data<float>();
    s.keys.insert(s.keys.end(), f, f + len * s.dim);
    s.values.insert(s.values.end(), tokens.begin() + start + 1, tokens.begin() + start + len + 1);
    if (progress) progress(w + 1, windows);
  }
  return s;
}

std::vector<Neighbor> KnnDatastore::search(const float* q, int64_t k) const {
  std::vector<Neighbor> all(values.size());
  for (int64_t i = 0; i < size(); ++i) all[size_t(i)] = {squared_distance(q, keys.data() + i * dim, dim), i};
  const auto keep = size_t(std::min<int64_t>(k, size()));
  std::partial_sort(all.begin(), all.begin() + long(keep), all.end(), nearer);
  all.resize(keep);
  return all;
}

void KnnDatastore::build_index(int64_t n_lists, int64_t iterations, uint64_t seed) {
  TZ_CHECK(n_lists >= 1 && n_lists <= size(), "kNN-LM: lists must be in [1, ", size(), "], got ", n_lists);
  Generator gen(seed);
  std::vector<int64_t> order(values.size());
  for (int64_t i = 0; i < size(); ++i) order[size_t(i)] = i;
  for (int64_t i = 0; i < n_lists; ++i) std::swap(order[size_t(i)], order[size_t(gen.randint(i, size()))]);
  centroids.assign(size_t(n_lists * dim), 0.0f);
  for (int64_t c = 0; c < n_lists; ++c)
    std::copy_n(keys.begin() + order[size_t(c)] * dim, dim, centroids.begin() + c * dim);
  std::vector<int64_t> assign(values.size(), -1);
  for (int64_t it = 0; it <= iterations; ++it) {
    for (int64_t i = 0; i < size(); ++i) {  // assign each key to its nearest centroid
      float best = std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < n_lists; ++c) {
        const float d = squared_distance(keys.data() + i * dim, centroids.data() + c * dim, dim);
        if (d < best) best = d, assign[size_t(i)] = c;
      }
    }
    if (it == iterations) break;
    std::vector<double> sum(size_t(n_lists * dim), 0.0);
    std::vector<int64_t> count(size_t(n_lists), 0);
    for (int64_t i = 0; i < size(); ++i) {
      const int64_t c = assign[size_t(i)];
      ++count[size_t(c)];
      for (int64_t j = 0; j < dim; ++j) sum[size_t(c * dim + j)] += keys[size_t(i * dim + j)];
    }
    for (int64_t c = 0; c < n_lists; ++c)  // an emptied list keeps its centroid
      if (count[size_t(c)] > 0)
        for (int64_t j = 0; j < dim; ++j)
          centroids[size_t(c * dim + j)] = float(sum[size_t(c * dim + j)] / double(count[size_t(c)]));
  }
  lists.assign(size_t(n_lists), {});
  for (int64_t i = 0; i < size(); ++i) lists[size_t(assign[size_t(i)])].push_back(i);
}

std::vector<Neighbor> KnnDatastore::search_index(const float* q, int64_t k, int64_t nprobe) const {
  TZ_CHECK(!lists.empty(), "kNN-LM: search_index before build_index");
  const auto n_lists = int64_t(lists.size());
  TZ_CHECK(nprobe >= 1 && nprobe <= n_lists, "kNN-LM: nprobe must be in [1, ", n_lists, "], got ", nprobe);
  std::vector<Neighbor> near_lists(static_cast<size_t>(n_lists));
  for (int64_t c = 0; c < n_lists; ++c)
    near_lists[size_t(c)] = {squared_distance(q, centroids.data() + c * dim, dim), c};
  std::partial_sort(near_lists.begin(), near_lists.begin() + nprobe, near_lists.end(), nearer);
  std::vector<Neighbor> found;
  for (int64_t p = 0; p < nprobe; ++p)
    for (int64_t i : lists[size_t(near_lists[size_t(p)].index)])
      found.push_back({squared_distance(q, keys.data() + i * dim, dim), i});
  const auto keep = size_t(std::min<int64_t>(k, int64_t(found.size())));
  std::partial_sort(found.begin(), found.begin() + long(keep), found.end(), nearer);
  found.resize(keep);
  return found;
}

Tensor knn_log_probs(const Tensor& logits, const Tensor& features, const KnnDatastore& store,
                     const KnnOptions& options) {
  options.validate();
  TZ_CHECK(
      logits.dim() == 2 && features.dim() == 2 && logits.size(0) == features.size(0) && features.size(1) == store.dim,
      "knn_log_probs: expected logits [T, V] and features [T, ", store.dim, "], got ", logits.shape(), " and ",
      features.shape());
  TZ_CHECK(store.size() > 0, "knn_log_probs: the datastore is empty");
  const int64_t T = logits.size(0), V = logits.size(1);
  Tensor lm = log_softmax(logits.to(DType::f64)).contiguous();
  if (options.lambda == 0) return lm;
  const Tensor f = features.to(DType::f32).contiguous();
  std::vector<double> out = lm.to_vector<double>();
  const double log_l = std::log(options.lambda), log_1l = options.lambda < 1 ? std::log1p(-options.lambda) : -INFINITY;
  for (int64_t t = 0; t < T; ++t) {
    const float* q = f.data<float>() + t * store.dim;
    const std::vector<Neighbor> nn =
        options.nprobe > 0 ? store.search_index(q, options.k, options.nprobe) : store.search(q, options.k);
    std::vector<double> vote(size_t(V), -INFINITY);  // log sum exp(-d / tau) per token
    double total = -INFINITY;
    for (const Neighbor& n : nn) {
      const double s = -double(n.distance) / options.temperature;
      const int64_t y = store.values[size_t(n.index)];
      TZ_CHECK(y >= 0 && y < V, "knn_log_probs: the datastore holds token ", y, ", outside the vocabulary of ", V);
      vote[size_t(y)] = log_add(vote[size_t(y)], s);
      total = log_add(total, s);
    }
    for (int64_t y = 0; y < V; ++y) {
      double& o = out[size_t(t * V + y)];
      o = log_add(log_1l + o, vote[size_t(y)] == -INFINITY ? -INFINITY : log_l + vote[size_t(y)] - total);
    }
  }
  return from_vector(out, {T, V});
}

KnnEvaluation knn_evaluate(LM& lm, const std::vector<int64_t>& tokens, int64_t window, const KnnDatastore& store,
                           const KnnOptions& options) {
  TZ_CHECK(window >= 1 && window <= lm.context(), "kNN-LM: window must be in [1, ", lm.context(), "], got ", window);
  TZ_CHECK(tokens.size() >= 2, "kNN-LM: evaluation needs at least 2 tokens, got ", tokens.size());
  NoGradGuard no_grad;
  KnnEvaluation e;
  const int64_t n = int64_t(tokens.size()) - 1;
  for (int64_t start = 0; start < n; start += window) {
    const int64_t len = std::min(window, n - start);
    auto [logits, features] = run_window(lm, tokens, start, len);
    const std::vector<double> plain = log_softmax(logits.to(DType::f64)).to_vector<double>(),
                              mixed = knn_log_probs(logits, features, store, options).to_vector<double>();
    const int64_t V = logits.size(1);
    for (int64_t t = 0; t < len; ++t) {
      const int64_t y = tokens[size_t(start + t + 1)];
      e.lm_nll -= plain[size_t(t * V + y)];
      e.knn_nll -= mixed[size_t(t * V + y)];
    }
    e.tokens += len;
  }
  e.lm_nll /= double(e.tokens);
  e.knn_nll /= double(e.tokens);
  return e;
}

}  // namespace tz::models

namespace tz::zoo {

void register_knn_lm(nn::Registry& r) {
  r.add({.id = "knn_lm",
         .summary = "kNN-LM: the LM's next-token distribution mixed with the next tokens of the nearest datastore "
                    "contexts (models/knn_lm.h; exhaustive or inverted-file search)",
         .test_config = "{}",
         .example = R"({"dim": 256, "depth": 4, "heads": 4})"});
}

}  // namespace tz::zoo
