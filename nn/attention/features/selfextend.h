// SelfExtend. "LLM Maybe LongLM: Self-Extend LLM Context Window Without Tuning", Jin et al.
// 2024, arXiv:2401.01325 (ICML 2024). (The seed's link, 2305.15265, is another paper.)
//
// Shapes: B batch, H heads, T queries, S keys, D head size; neighbour window w_n, group G.
// Two relative-position regimes, merged before the softmax:
//   neighbour  i - j <= w_n:  the exact distance i - j
//   grouped    i - j >  w_n:  floor(i / G) - floor(j / G) + w_n - floor(w_n / G)
// (the query at floor(i / G) + w_n - floor(w_n / G), the key at floor(j / G): the floor
// division maps far positions into the trained range, the shift keeps the two regimes
// continuous at the window's edge). Every key stays visible. With w_n >= L nothing is grouped:
// the base model's output. For inputs up to (L_train - w_n) G + w_n positions (G dividing
// w_n), the largest relative position used is L_train - 1.
// A position remap (position_remap.h: why an attention feature, how the regimes merge):
// far(i, j) = i - j > w_n, front = all (no eviction: the cache is the plain one).
// Keys: attn_selfextend_group = G (> 0 turns it on; G = 1 is the base model),
// attn_selfextend_window = w_n (512).
// Deviations: none in the math; the paper's FlashAttention form (two attention passes whose
// outputs are merged) is the same merge, done here on the materialised scores.
#pragma once

#include "nn/attention/features/position_remap.h"

namespace tz::nn {

class SelfExtendRule : public RemapRule {
 public:
  SelfExtendRule(int64_t group, int64_t window) : G(group), w(window) {}
  bool visible(int64_t, int64_t) const override { return true; }
  bool far(int64_t i, int64_t j) const override { return i - j > w; }
  int64_t far_query(int64_t i) const override { return i / G + w - w / G; }
  int64_t far_key(int64_t j) const override { return j / G; }
  int64_t front() const override { return kAll; }
  int64_t back() const override { return 0; }
  int64_t G, w;
};

}  // namespace tz::nn
