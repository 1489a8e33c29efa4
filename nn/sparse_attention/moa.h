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
// Profile (moa_profile): the paper picks (alpha_h, beta_h) from a candidate set by the loss
// sensitivity of a trained model's attention under a density budget. Here the sensitivity is
// its first-order proxy, the attention mass a rule drops: from a trained model's attention
// probabilities, m_h(d) = mean over queries of the mass at distance d (and on the first g
// keys), each head starts at its cheapest candidate and the heads are upgraded greedily by
// retained mass per density until the mean density reaches the budget.
// Deviation: mass instead of the gradient-weighted loss change; one rule per head (no
// per-length regression of the profile).
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<std::vector<double>> kMoaAlpha{"moa_alpha", {16}, "MoA: alpha_h per head (cycled)"};
inline const Key<std::vector<double>> kMoaBeta{"moa_beta", {0.25}, "MoA: beta_h per head (cycled)"};
inline const Key<int64_t> kMoaInitial{"moa_initial", 1, "MoA: initial tokens g every query keeps"};

struct MoaRule {
  double alpha = 0, beta = 0;
  int64_t span(int64_t N) const;  // S_h(N)
};

kernels::SparsePattern moa_pattern(std::vector<MoaRule> rules, int64_t g);

// Attention mass by distance of one head, from probabilities P [N, N] (row p: a causal
// softmax over j <= p), for lengths N: mass[p][j] averaged into the retained mass of a rule.
struct MoaProfile {
  std::vector<MoaRule> rules;    // the choice, per head
  std::vector<double> retained;  // mean retained attention mass per head
  std::vector<double> density;   // fraction of causal pairs kept per head
};
// probs: per head, one [N, N] row-major causal probability matrix (f64) of a trained model
// on a sample input; candidates: the rules to choose from; budget: the mean density allowed.
MoaProfile moa_profile(const std::vector<std::vector<double>>& probs, int64_t N, const std::vector<MoaRule>& candidates,
                       int64_t g, double budget);

}  // namespace tz::nn
