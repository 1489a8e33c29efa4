// ScaleNorm, from "Transformers without Tears: Improving the Normalization of
// Self-Attention" (Nguyen & Salazar 2019), arXiv:1910.05895.
//
//   ScaleNorm(x) = g · x / max(‖x‖₂, ε)      x [B, T, C], ‖·‖ over C, g one learned scalar
//
// g starts at sqrt(C): a vector of C unit-variance entries has norm about sqrt(C), so at
// initialisation ScaleNorm rescales to roughly the size LayerNorm would give.
// Computed as g · x · rsqrt(max(Σ x², ε²)): clamping the squared norm (not the norm) keeps
// the backward free of sqrt(0) = 0 → 1/0 when x = 0 (then the gradient is g / ε).
//
// Deviation: the paper pairs ScaleNorm with FixNorm (word embeddings scaled to a fixed
// length) and pre-norm; neither is part of this layer (pre-norm is the LM's default).
#pragma once

#include "nn/config.h"
#include "nn/module.h"

namespace tz::nn {

// Same name and type as LayerNorm's norm_eps (nn/layers.h), another meaning: a floor of ‖x‖.
inline const Key<double> kScaleNormEps{"norm_eps", 1e-5, "floor of the L2 norm"};

struct ScaleNormOptions {
  int64_t dim = 0;    // C
  double eps = 1e-5;  // floor of the norm
};

class ScaleNorm : public UnaryModule {
 public:
  explicit ScaleNorm(const ScaleNormOptions& options);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  Tensor gain;  // g, shape [1]
  ScaleNormOptions options;
};

}  // namespace tz::nn
