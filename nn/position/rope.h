// Rotary position embedding (RoPE). "RoFormer: Enhanced Transformer with Rotary Position
// Embedding", Su et al. 2021, arXiv:2104.09864.
//
// Shapes: B batch, H heads, T query positions, S key positions, D head size (even).
// For every pair of channels (2k, 2k+1), k = 0..D/2-1, a query at position m is rotated by
// the angle m θ_k, θ_k = base^(-2k/D) (base 10000):
//   q'_{2k}   = q_{2k} cos(m θ_k) - q_{2k+1} sin(m θ_k)
//   q'_{2k+1} = q_{2k} sin(m θ_k) + q_{2k+1} cos(m θ_k)
// and a key at position n by n θ_k, in every layer. Then <q'_m, k'_n> depends on m - n
// only (a rotation by m θ minus a rotation by n θ), and |q'| = |q|.
// Positions are absolute (q_start.., k_start..), so the KV cache stores rotated keys.
// Options: rotary_base (θ base). No deviation from the paper.
#pragma once

#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::nn {

// Read by rope and xpos.
inline const Key<double> kRotaryBase{"rotary_base", 10000.0, "base of the angle frequencies θ_k = base^(-2k/D)"};

// Rotates x [B, H, T, D] (positions start..start+T-1) pairwise as above. With scale_base > 0
// it also multiplies pair k by ζ_k^(sign · m / scale_base) (xPos; sign +1 for queries,
// -1 for keys), ζ_k = (2k/D + 0.4) / 1.4. Differentiable in x (a composite of mul/add).
Tensor apply_rotary(const Tensor& x, int64_t start, double base, double scale_base = 0, double sign = 1);

class RotaryPositions : public PositionScheme {
 public:
  explicit RotaryPositions(double base = 10000.0);
  void rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const override;
  bool rotates() const override { return true; }
  std::string describe() const override;
  double base;
};

}  // namespace tz::nn
