// NTK-aware scaled RoPE, and dynamic NTK. "NTK-Aware Scaled RoPE allows LLaMA models to have
// extended (8k+) context size without any fine-tuning", bloc97, r/LocalLLaMA, June 2023;
// dynamic NTK: emozilla, r/LocalLLaMA, July 2023. Analysed in YaRN (arXiv:2309.00071, §3.1).
//
// Shapes: B batch, H heads, T query positions, D head size (even, > 2), K = D/2 pairs.
// Instead of slowing every frequency by 1/s (Position Interpolation), change RoPE's base:
//   b' = b s^(D / (D - 2)),   θ'_k = b'^(-2k/D) = θ_k s^(-2k / (D - 2)),
// and rotate the token at position m by m θ'_k. The highest frequency (k = 0) keeps
// θ'_0 = θ_0 = 1: neighbouring tokens stay as far apart as in training. The lowest
// (k = K - 1) becomes θ_{K-1} / s exactly: the longest wavelength is stretched by s, as PI
// would, so the far positions stay inside the trained angle range. Pairs in between are
// interpolated by s^(2k/(D-2)), a geometric blend. s = rope_scale >= 1; s = 1 is RoPE.
//
// Dynamic NTK (ntk_dynamic = true): s is not fixed but follows the length seen so far,
//   s = max(1, L_cur / L_train),   L_train = rope_train_len,
// so a sequence within the training length is plain RoPE and s grows as it extends past it.
// Deviation: the token at position m keeps the s of the moment it arrived, L_cur = m + 1
// (its key is cached rotated, as in any RoPE cache). Implementations that recompute every
// position with the newest s (Hugging Face's forward) give a full forward that disagrees
// with their own cached decode; here the forward computes each position's s from its own
// L_cur, so decoding token by token equals the forward. Queries and keys at different
// positions then use slightly different bases, so the scores are no longer exactly a
// function of m - n beyond L_train.
#pragma once

#include "nn/position/rope.h"

namespace tz::nn {

inline const Key<bool> kNtkDynamic{"ntk_dynamic", false,
                                   "dynamic NTK: s = max(1, L_cur / rope_train_len) instead of a fixed rope_scale"};

class NtkRotary : public RotaryPositions {
 public:
  // Static: s = scale. Dynamic (train_len > 0): s from the length, scale must be 1.
  NtkRotary(double base = 10000.0, double scale = 4.0, int64_t train_len = 0);
  Tensor angles(int64_t start, int64_t T, int64_t D) const override;
  bool linear_in_position() const override { return train_len == 0; }  // dynamic: s varies with m
  std::string describe() const override;
  // The s used for the token at position m.
  double scale_at(int64_t m) const;
  // θ'_k = (b s^(D/(D-2)))^(-2k/D), k = 0..D/2-1.
  std::vector<double> frequencies(int64_t D, double s) const;
  double scale;
  int64_t train_len;  // > 0: dynamic NTK
};

}  // namespace tz::nn
