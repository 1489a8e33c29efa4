// MoA, Mixture of Sparse Attention: a sliding window per head whose span grows with the
// length, the initial tokens always kept. "MoA: Mixture of Sparse Attention for Automatic
// Large Language Model Compression", Fu, Huang, Ning, Zhang, Chen, Zhang, Li, Li, Wang,
// Yang, Wang 2024, arXiv:2406.14909, sec. 3-4.
//
// Shapes and the layer: nn/sparse_attention/common.h. Head h has the elastic rule
// (alpha_h, beta_h); the query at position p (context length N = p + 1) sees
//   j < g   or   p - j < S_h(p + 1),   S_h(N) = max(1, floor(alpha_h + beta_h N))
// (the paper's S_h(N) with N the length read so far, so a decoding step sees what the
// whole forward saw), causal. One layout mask term per (H, S).
//
// Profile (sec. 4): the rules are chosen for a model already trained with dense attention
// (span >= N), without retraining. On calibration batches, A = softmax(q k^T / sqrt(D)) of
// each head and the loss gradient dL/dA give the first-order loss change of masking one
// entry (i, j), the row renormalised over what is left (A'_n = A_n / (1 - A_j)):
//   dL_ij = -A_ij (dL/dA_ij - sum_n A_in dL/dA_in) / (1 - A_ij)
// with dL/dA_ij = dO_i . v_j and sum_n A_in dL/dA_in = dO_i . O_i (dO the gradient of the
// head's output O). A rule's cost on a head is the sum of dL over the causal pairs it hides,
// averaged over the batches; the plan takes one candidate rule per (layer, head) minimising
// the summed cost with the mean density (kept / causal pairs) within a budget: a
// multiple-choice knapsack, solved exactly by dynamic programming over the kept pair counts
// (the paper solves the same choice as a mixed-integer program).
// Deviations: costs from one calibration length N (the paper fits over several lengths);
// the signed first-order sum, as the paper's profiler sums its effects.
#pragma once

#include <functional>
#include <memory>

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<std::vector<double>> kMoaAlpha{
    "moa_alpha", {16}, "MoA: alpha per head (cycled), or depth x heads values (layer-major, per layer)"};
inline const Key<std::vector<double>> kMoaBeta{"moa_beta", {0.25}, "MoA: beta, as moa_alpha"};
inline const Key<int64_t> kMoaInitial{"moa_initial", 1, "MoA: initial tokens g every query keeps"};

struct MoaRule {
  double alpha = 0, beta = 0;
  int64_t span(int64_t N) const;  // S_h(N)
};

kernels::SparsePattern moa_pattern(std::vector<MoaRule> rules, int64_t g);

// The MoA layer: the rules of its H heads can be replaced after training (the profile's
// plan), and a probe records what the profile reads.
class MoaAttention : public SparseAttention {
 public:
  MoaAttention(int64_t dim, int64_t heads, std::vector<MoaRule> rules, int64_t g, Generator& gen);
  const std::vector<MoaRule>& rules() const;
  int64_t initial() const;
  void set_rules(std::vector<MoaRule> rules);  // one per head
  // While on, each forward keeps q, k, v and adds a zero leaf tensor to the attention output
  // O, whose gradient after the backward is dL/dO.
  void set_profiling(bool on);
  // dL_ij of every head for the last profiled forward and backward (training form, T = S),
  // summed over its batch: [H][T * T], row p holds j = 0..T-1; 0 where j > p or hidden.
  std::vector<std::vector<double>> influence() const;

 private:
  struct Shared;
  std::shared_ptr<Shared> s_;
};

// Causal pairs (j <= p < N) a rule keeps, and the sum of M [N, N] over the pairs it hides.
int64_t moa_kept(int64_t N, const MoaRule& rule, int64_t g);
double moa_hidden_sum(const std::vector<double>& M, int64_t N, const MoaRule& rule, int64_t g);

struct MoaPlan {
  std::vector<MoaRule> rules;   // per head
  std::vector<double> cost;     // per head: the hidden sum of its rule
  std::vector<double> density;  // per head: kept / causal pairs
  double mean_density() const;
};
// One candidate per head (cost matrices M [heads][N * N]: influence, or attention mass)
// minimising the summed hidden cost with mean density <= budget. Exact up to the pair counts
// rounded up to 1/65536 of the total (so the budget always holds).
MoaPlan moa_plan(const std::vector<std::vector<double>>& M, int64_t N, const std::vector<MoaRule>& candidates,
                 int64_t g, double budget);

// The MoA layers of a model, in module order (layer-major heads follow it).
std::vector<std::shared_ptr<MoaAttention>> moa_layers(const Module& model);
// The influence profile of a trained model: for b = 0..batches-1, loss(b) is run and its
// backward taken with every MoA layer probing (parameter gradients are zeroed after); the
// result is, per MoA layer then head, the mean dL_ij over the batches [T * T].
std::vector<std::vector<double>> moa_profile(Module& model, const std::function<Tensor(int64_t)>& loss,
                                             int64_t batches);

}  // namespace tz::nn
