// Position-infused attention. "Shortformer: Better Language Modeling using Shorter Inputs",
// Press, Smith & Lewis 2020, arXiv:2012.15832 (§4); the same idea in DETR, arXiv:2005.12872.
//
// Shapes: T positions, C model width; p_i the sinusoid of position i (width C, as in
// sinusoidal_pe but with unit amplitude). In every attention layer
//   q_i = (x_i + p_i) W^Q,   k_j = (x_j + p_j) W^K,   v_j = x_j W^V
// and nothing is added to the token embeddings, the values or the residual stream: the
// hidden states carry no position, so states computed at one offset can be reused at
// another (the paper caches the previous subsequence's outputs as extra keys).
// Deviations: the cache of the previous subsequence and the staged short→long training
// are the model's and trainer's business, not this scheme's; here the attention's KV cache
// (absolute positions) is the step form.
#pragma once

#include "nn/mixer.h"

namespace tz::nn {

class InfusedPositions : public PositionScheme {
 public:
  InfusedPositions(int64_t dim, double base);
  Tensor qk_input(int64_t start, int64_t T, DType dtype) const override;
  std::string describe() const override;
  int64_t dim;
  double base;
};

}  // namespace tz::nn
