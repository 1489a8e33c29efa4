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

#include <vector>

#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::nn {

// Read by rope and xpos.
inline const Key<double> kRotaryBase{"rotary_base", 10000.0, "base of the angle frequencies θ_k = base^(-2k/D)"};
// Read by the context-extension schemes (pi_interpolation, ntk_aware_rope, yarn).
inline const Key<double> kRopeScale{"rope_scale", 4.0, "s = L_target / L_train >= 1: how far the context is extended"};
inline const Key<int64_t> kRopeTrainLen{"rope_train_len", 512, "L_train: the length the model was trained at"};

// Rotates x [B, H, T, D] (positions start..start+T-1) pairwise as above. With scale_base > 0
// it also multiplies pair k by ζ_k^(sign · m / scale_base) (xPos; sign +1 for queries,
// -1 for keys), ζ_k = (2k/D + 0.4) / 1.4. Differentiable in x (a composite of mul/add).
Tensor apply_rotary(const Tensor& x, int64_t start, double base, double scale_base = 0, double sign = 1);

// The rotation itself: pairs (x_{2k}, x_{2k+1}) of x [B, H, T, D] turned by the tables
// c = cos, s = sin [T, D/2] (any dtype; cast to x's), as the equations above.
Tensor rotate_pairs(const Tensor& x, Tensor c, Tensor s);

// θ_k = base^(-2k/D), k = 0..D/2-1.
std::vector<double> rotary_frequencies(int64_t D, double base);

// x [B, H, T, D] rotated pairwise by the angles [T, D/2] (f64, row t = position of x's row
// t), and multiplied by `magnitude` (cos and sin tables scaled by it).
Tensor rotate_by_angles(const Tensor& x, const Tensor& angles, double magnitude = 1.0);

// RoPE as a position scheme. The context-extension schemes (pi_interpolation.h,
// ntk_aware_rope.h, yarn.h) are RoPE with another angle table and magnitude: they override
// angles() and magnitude() and share the rotation.
class RotaryPositions : public PositionScheme {
 public:
  explicit RotaryPositions(double base = 10000.0);
  void rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const override;
  // The angles [T, D/2] (f64) of positions m = start..start+T-1: m θ_k here.
  virtual Tensor angles(int64_t start, int64_t T, int64_t D) const;
  // A factor on every rotated query and key (so the logits get its square); 1 here.
  virtual double magnitude() const { return 1.0; }
  // True when angles(m) = m angles(1): a rotation by n more positions is then the rotation by
  // n times the frequencies angles(1) (what the position remaps of the attention features
  // rely on). Every scheme here but dynamic NTK.
  virtual bool linear_in_position() const { return true; }
  bool rotates() const override { return true; }
  std::string describe() const override;
  double base;
};

}  // namespace tz::nn
