// gMLP (Liu, Dai, So & Le 2021, "Pay Attention to MLPs", arXiv:2105.08050): an attention-free
// block whose only token mixing is a Spatial Gating Unit. With x [B, T, C] (normed by the
// block), F the gate width and L the context:
//   Z = GELU(x U + b_U)                          [B, T, 2F]
//   Z1, Z2 = split(Z)                            [B, T, F] each
//   s(Z)_t = Z1_t ⊙ (Σ_{j ≤ t} W_tj LN(Z2)_j + b_t)     W [L, L], b [L]: one weight per pair
//                                                       of positions, masked to j ≤ t (causal)
//   y = s(Z) V + b_V                              the block adds x (the residual)
// W starts near zero (U(−ε, ε), ε = gmlp_init_eps / L) and b at 1, so at initialisation the
// unit is close to the channel MLP (Z1 ⊙ 1) V: every token mixes only through training.
// F = gmlp_mult · C / 2 (the paper's d_ffn = 6 C is gmlp_mult 6). Decoding keeps LN(Z2) of
// every earlier position [B, t, F] (row t of W reads them all), so a step costs O(t F).
// The whole model: this unit as every block's one sublayer (layout "s" per block, as the
// paper's blocks have no separate FFN). Not done: aMLP's tiny attention on the gate.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kGmlpMult{"gmlp_mult", 6, "gMLP: d_ffn = gmlp_mult · dim, split into halves Z1, Z2"};
inline const Key<double> kGmlpInitEps{"gmlp_init_eps", 1e-3, "gMLP: W starts in U(±eps / context); b starts at 1"};

struct GmlpState : MixerState {
  Tensor rows;  // LN(Z2) of the positions so far, then zeros: [B, L, F]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("rows", rows);
  }
};

class Gmlp : public Mixer {
 public:
  Gmlp(int64_t dim, int64_t gate, int64_t context, double init_eps, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  std::shared_ptr<Linear> up, down;  // U: C -> 2F, V: F -> C
  std::shared_ptr<LayerNorm> gate_norm;
  Tensor spatial_weight, spatial_bias;  // W [L, L] (used below the diagonal), b [L]

 private:
  int64_t dim_, gate_, context_;
};

}  // namespace tz::nn
