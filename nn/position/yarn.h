// YaRN. "YaRN: Efficient Context Window Extension of Large Language Models", Peng et al.
// 2023, arXiv:2309.00071 (ICLR 2024).
//
// Shapes: B batch, H heads, T query positions, D head size (even), K = D/2 channel pairs.
// RoPE (see rope.h) with a per-pair choice between interpolating and keeping the frequency
// ("NTK-by-parts", §3.2), plus a temperature on the logits (§3.3). For pair k:
//   θ_k = base^(-2k/D),   λ_k = 2π / θ_k (its wavelength),
//   r_k = L_train / λ_k   (how many full turns it makes over the training length),
//   γ(r) = 0 if r < α,  1 if r > β,  (r - α) / (β - α) otherwise   (α = 1, β = 32),
//   θ'_k = (1 - γ(r_k)) θ_k / s + γ(r_k) θ_k,
// so pairs that turn many times in training (r > β, high frequency) are untouched, pairs that
// never complete a turn (r < α) are interpolated by exactly 1/s as in PI, and a linear ramp
// lies in between. The logits are divided by a temperature t,
//   √(1/t) = 0.1 ln s + 1,
// applied, as in the paper's code, by multiplying both the rotated queries and the rotated
// keys by √(1/t) (so q·k gets 1/t with no change to the attention core; the KV cache stores
// keys with the factor in). s = rope_scale >= 1, L_train = rope_train_len; s = 1 is RoPE.
// Deviations: none; the paper's optional fine-tuning is a training choice, not this id.
#pragma once

#include "nn/position/rope.h"

namespace tz::nn {

inline const Key<double> kYarnAlpha{"yarn_alpha", 1.0, "α: pairs with r = L_train/λ below it are interpolated by 1/s"};
inline const Key<double> kYarnBeta{"yarn_beta", 32.0, "β: pairs with r = L_train/λ above it keep their frequency"};

// γ(r): 0 below α, 1 above β, linear in between.
double yarn_ramp(double r, double alpha, double beta);
// √(1/t) = 0.1 ln s + 1: the factor on q and on k (the logits get its square, 1/t).
double yarn_magnitude(double s);

class YarnRotary : public RotaryPositions {
 public:
  YarnRotary(double base = 10000.0, double scale = 4.0, int64_t train_len = 512, double alpha = 1.0,
             double beta = 32.0);
  Tensor angles(int64_t start, int64_t T, int64_t D) const override;
  double magnitude() const override { return yarn_magnitude(scale); }
  std::string describe() const override;
  // θ'_k, k = 0..D/2-1, as above.
  std::vector<double> frequencies(int64_t D) const;
  double scale;
  int64_t train_len;
  double alpha, beta;
};

}  // namespace tz::nn
