// xPos. "A Length-Extrapolatable Transformer", Sun et al. 2022, arXiv:2212.10554 (ACL 2023).
//
// Shapes: B batch, H heads, T query positions, S key positions, D head size (even).
// RoPE (see rope.h) times an exponential decay per channel pair k = 0..D/2-1:
//   q~_m = RoPE(q_m) ⊙ ζ^(m/γ),   k~_n = RoPE(k_n) ⊙ ζ^(-n/γ),
//   ζ_k = (2k/D + 0.4) / 1.4 ∈ [0.29, 1),   γ = scale_base = 512,
// so q~_m · k~_n = Σ_k ζ_k^((m-n)/γ) (rotated pair products): still a function of m - n,
// but pairs with fast rotation (small k, small ζ_k) are damped with distance.
// Deviations: (1) the paper's blockwise causal attention (BCA) at inference is a mixer
// choice (local attention), not a position scheme, so it is not part of this id;
// (2) the scale is taken from absolute position 0 (the paper's code centres it on the
// sequence middle); centring changes nothing in q~·k~ but would tie the cache to a
// length, so here the step form stays exact. In f32, ζ_0^(±m/γ) spans 1e±5 at m ≈ 5000:
// keep contexts well below that, or raise xpos_scale_base.
#pragma once

#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<double> kXposScaleBase{"xpos_scale_base", 512.0,
                                        "γ: the decay ζ_k^((m-n)/γ) is spread over this many positions"};

class XPosPositions : public PositionScheme {
 public:
  XPosPositions(double base = 10000.0, double scale_base = 512.0);
  void rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const override;
  bool rotates() const override { return true; }
  std::string describe() const override;
  double base, scale_base;
};

}  // namespace tz::nn
