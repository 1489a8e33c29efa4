// Absolute position schemes: a vector per position added to the token embeddings.
//   learned_abs_pe (Gehring et al. 2017, arXiv:1705.03122; GPT): x_i += P_i, P learned [L, C]
//   sinusoidal_pe  (Vaswani et al. 2017, arXiv:1706.03762):
//     PE(i, 2k) = sin(i / 10000^(2k/C)),  PE(i, 2k+1) = cos(i / 10000^(2k/C)),  x_i += g PE(i)
//   Deviation: the paper multiplies the embeddings by sqrt(C) so that they are not drowned
//   by the unit-amplitude sinusoids; here the sinusoids get a learned gain g instead
//   (initialised to the embeddings' 0.02 scale, as x-transformers' scaled variant does).
#pragma once

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

// Read by every scheme built on sinusoidal_table: sinusoidal_pe, position_infused_attn, txl_rel_pos.
inline const Key<double> kPosBase{"pos_base", 10000.0, "base of the sinusoid frequencies base^(-2k/C)"};
inline const Key<double> kPosGain{"pos_gain", 0.02, "initial value of the learned gain on the sinusoids"};

class LearnedPositions : public PositionScheme {
 public:
  LearnedPositions(int64_t max_positions, int64_t dim, Generator& gen);
  Tensor embed(int64_t start, int64_t T, DType dtype) const override;
  int64_t max_positions() const override { return table->options.num; }
  std::string describe() const override;
  std::shared_ptr<Embedding> table;
};

class SinusoidalPositions : public PositionScheme {
 public:
  explicit SinusoidalPositions(int64_t dim, double base = 10000.0, double gain = 0.02);
  Tensor embed(int64_t start, int64_t T, DType dtype) const override;  // any length
  std::string describe() const override;
  int64_t dim;
  double base;
  Tensor gain;  // learned scalar
};

// The sinusoidal table for positions start..start+T-1: [T, dim] (dim even or odd).
Tensor sinusoidal_table(int64_t start, int64_t T, int64_t dim, double base, DType dtype);

}  // namespace tz::nn
