// S²-MLP (Yu, Li, Cai, Sun & Li 2022, "S²-MLP: Spatial-Shift MLP Architecture for Vision",
// arXiv:2106.07477, WACV 2022): an MLP model with no token-mixing parameters; patches talk
// only through a parameter-free shift of channel groups. The paper's spatial-shift block is
//   X ← X + MLP_2(S(GELU(MLP_1(LN(X)))))      then the channel MLP block X ← X + MLP(LN(X))
// where S splits the channels into g = 4 groups and moves them by +1 / −1 along W / H (each
// patch takes group i from one of its four neighbours). Its 1-D causal form, with x [B, T, C]
// (normed by the block), F = s2_mlp_mult · C and g = s2_mlp_groups:
//   h_t = GELU(x_t W_1 + b_1)                                  [B, T, F]
//   group i (channels [i F / g, (i + 1) F / g), i = 0 .. g − 1) is shifted back by i + 1 steps:
//   s_t[group i] = h_{t−i−1}[group i]         (zero when t − i − 1 < 0)
//   y_t = s_t W_2 + b_2                                        the block adds x (the residual)
// so output t reads h_{t−1} .. h_{t−g} and nothing at or after t; the residual stream carries
// x_t itself, as the paper's skip connection carries each patch's own features. Every group
// moves, as in the paper (whose four groups are all shifted; none stays in place); the
// catalogue's "shifted by 1..g steps backward" is this. The paper's four directions become
// four distances back in time, the causal stand-in for a 3 × 3 neighbourhood.
// The zoo's block is the paper's block: this mixer in the token sublayer, the model's FFN as
// the channel MLP. Deviations: s2_mlp_mult defaults to 1, the paper's C → C projections (the
// catalogue's "expand channels" is s2_mlp_mult > 1, the v2 paper's 3×); g may differ from 4.
// Decoding keeps h of the last g positions [B, g, F]: a step costs O(C F), whatever its position.
// s2_mlp_shift false leaves every group in place (s_t = h_t): the same layers with no token
// mixing, the ablation that shows what the shift does (tests/zoo/proofs_mlp_mixers.cpp).
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kS2MlpMult{"s2_mlp_mult", 1, "S²-MLP: shifted width F = s2_mlp_mult · dim (paper: 1)"};
inline const Key<int64_t> kS2MlpGroups{"s2_mlp_groups", 4,
                                       "S²-MLP: channel groups g; group i is shifted back by i + 1 positions"};
inline const Key<bool> kS2MlpShift{"s2_mlp_shift", true,
                                   "S²-MLP: false = no shift (ablation: a channel MLP, no token mixing)"};

struct S2MlpState : MixerState {
  Tensor rows;  // h of the last g positions (zeros before position 0): [B, g, F]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("rows", rows);
  }
};

class S2Mlp : public Mixer {
 public:
  S2Mlp(int64_t dim, int64_t hidden, int64_t groups, bool shift, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // Channels of group i: [group_begin(i), group_begin(i + 1)).
  int64_t group_begin(int64_t i) const { return i * hidden_ / groups_; }
  int64_t groups() const { return groups_; }

  std::shared_ptr<Linear> in, out;  // W_1: C -> F, W_2: F -> C

 private:
  int64_t dim_, hidden_, groups_;
  bool shift_;
};

}  // namespace tz::nn
