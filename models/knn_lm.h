// kNN-LM: a language model's next-token distribution mixed with the next tokens of the
// nearest contexts in a datastore. "Generalization through Memorization: Nearest Neighbor
// Language Models", Khandelwal, Levy, Jurafsky, Zettlemoyer, Lewis 2020, arXiv:1911.00172.
//
// The datastore holds, for every position i of a text, the key f(c_i) (the final features the
// LM head reads, [C]) and the value w_i (the token that followed). At a position with
// features q, the k nearest keys N(q) by squared L2 distance d vote:
//   p_kNN(y | x) = sum_{(k_i, v_i) in N(q)} 1[y = v_i] exp(-d_i / tau) / sum_{N(q)} exp(-d_i / tau)
//   p(y | x)     = lambda p_kNN(y | x) + (1 - lambda) p_LM(y | x)          (eq. 2, in log space)
// Search is exhaustive (exact), or through an inverted-file index: keys clustered by k-means
// into lists, a query visiting the nprobe lists of the nearest centroids (the paper uses
// FAISS's quantised IVF; this one stores full keys, so nprobe = lists is exact).
// The datastore reads its text in windows of the model's context, as evaluation does.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"
#include "models/lm.h"

namespace tz::models {

struct KnnOptions {
  int64_t k = 32;            // neighbours
  double lambda = 0.25;      // weight of p_kNN
  double temperature = 1.0;  // tau
  int64_t nprobe = 0;        // index lists visited; 0 = exhaustive search
  void validate() const;
};

struct Neighbor {
  float distance;  // squared L2
  int64_t index;   // into the datastore
};

class KnnDatastore {
 public:
  // Keys and values of every position of `tokens` (all but the last, whose next token is
  // unknown), the model run in non-overlapping windows of `window` tokens (<= its context).
  // progress(done, total) after each window.
  static KnnDatastore build(LM& lm, const std::vector<int64_t>& tokens, int64_t window,
                            const std::function<void(int64_t, int64_t)>& progress = nullptr);
  int64_t size() const { return int64_t(values.size()); }

  // The k nearest keys of q [dim], nearest first (ties by index).
  std::vector<Neighbor> search(const float* q, int64_t k) const;
  // The inverted-file index: `lists` k-means clusters (Lloyd's, `iterations` rounds, seeded).
  void build_index(int64_t lists, int64_t iterations, uint64_t seed);
  // Search through the index, visiting the nprobe nearest lists.
  std::vector<Neighbor> search_index(const float* q, int64_t k, int64_t nprobe) const;

  int64_t dim = 0;
  std::vector<float> keys;       // [size, dim]
  std::vector<int64_t> values;   // [size]
  std::vector<float> centroids;  // [lists, dim]
  std::vector<std::vector<int64_t>> lists;
};

// log p(y | x) [T, V] (f64) of logits [T, V] mixed with the neighbours of features [T, C].
// lambda = 0 is log_softmax(logits).
Tensor knn_log_probs(const Tensor& logits, const Tensor& features, const KnnDatastore& store,
                     const KnnOptions& options);

// Mean negative log-likelihood (nats per token) of `tokens`, windows as in build: the LM's
// alone and mixed with the datastore.
struct KnnEvaluation {
  double lm_nll = 0, knn_nll = 0;
  int64_t tokens = 0;
};
KnnEvaluation knn_evaluate(LM& lm, const std::vector<int64_t>& tokens, int64_t window, const KnnDatastore& store,
                           const KnnOptions& options);

}  // namespace tz::models
