// Position Interpolation (PI). "Extending Context Window of Large Language Models via
// Positional Interpolation", Chen et al. 2023, arXiv:2306.15595.
//
// Shapes: B batch, H heads, T query positions, D head size (even), K = D/2 channel pairs.
// RoPE (see rope.h) with every position index squeezed back into the trained range: a model
// trained at length L_train and run at L_target = s L_train (s = rope_scale >= 1) rotates
// the token at position m by the angle
//   m' θ_k,   m' = m L_train / L_target = m / s,   θ_k = base^(-2k/D),
// so every position m < L_target lands on m' < L_train, inside the range the model was
// trained on (interpolation between trained positions instead of extrapolation beyond them).
// All frequencies are slowed by the same factor 1/s, so neighbouring tokens sit 1/s apart.
// s = 1 is RoPE exactly (m / 1 = m).
// Deviations: none in the rotation. The paper follows the change with a short fine-tuning
// (about 1000 steps); that is a training choice, not part of this id.
#pragma once

#include "nn/position/rope.h"

namespace tz::nn {

class InterpolatedRotary : public RotaryPositions {
 public:
  InterpolatedRotary(double base = 10000.0, double scale = 4.0);
  Tensor angles(int64_t start, int64_t T, int64_t D) const override;
  std::string describe() const override;
  double scale;  // s
};

}  // namespace tz::nn
