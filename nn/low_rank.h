// Factored linear layers, W = V U of rank r (the Low-Rank Transformer, models/low_rank.h).
//
// While a LowRankLinears(r > 0) is alive on this thread, every nn::Linear built keeps the
// factors U [r, in] and V [out, r] as its parameters weight_u and weight_v instead of W
// [out, in] (its `weight` stays undefined), and computes
//   y = (x U^T) V^T + b
// with r (in + out) weights instead of in · out. The factors are drawn ~ N(0, s²) each,
// s² = init_std / √r, so that the entries of V U keep the layer's initial std; a layer
// initialised to zero gets V = 0 (U ~ N(0, 0.02²)). Code that reads W directly
// (Linear::f32_weight) gets an error naming the factored layer. A scope, like
// SkipWeightInit, lets a model factor the layers its components build without each
// component knowing: the LM opens one around its blocks.
#pragma once

#include <cstdint>

#include "nn/layers.h"

namespace tz::nn {

class LowRankLinears {
 public:
  explicit LowRankLinears(int64_t rank);  // 0: dense (no change)
  ~LowRankLinears();
  LowRankLinears(const LowRankLinears&) = delete;
  LowRankLinears& operator=(const LowRankLinears&) = delete;

 private:
  int64_t previous_;
};

// r of a factored Linear, 0 for a dense or quantized one.
int64_t linear_rank(const Linear& lin);

}  // namespace tz::nn
