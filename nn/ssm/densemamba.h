// DenseMamba: dense hidden connections between the SSM layers of a stack. "DenseMamba: State
// Space Models with Dense Hidden Connection for Efficient Large Language Models", He et al.
// 2024, arXiv:2403.00818 (sec. 3, DenseSSM).
//
// Shape letters: B batch, T time, E the SSM's inner width, l the layer, m the number of earlier
// layers each layer reads (dense_m).
//   y^l_t <- y^l_t + sum_{i=1..min(m, l)} phi_i(y^{l-i}_t),   phi_i(y) = (P_i y) sigmoid(G_i y)
// where y^l [B, T, E] is layer l's SSM output (after the z gate, before out_proj): each earlier
// layer's hidden states pass a selective transition (a projection and a gate) and are fused
// before the output projection. m = 0 is plain Mamba; the P_i start at 0, so that a DenseMamba
// stack starts as the Mamba stack it extends. The hidden states travel from layer to
// layer through MixerContext::carry within one forward (a decoding step included), so the
// recurrent decode stays exact.
#pragma once

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kDenseM{"dense_m", 0,
                                  "DenseMamba: each Mamba layer adds gated projections of the SSM outputs of the m "
                                  "layers before it (0 = plain Mamba)"};

// The transitions phi_1 .. phi_k of one layer (k = min(m, layer)).
class DenseHidden : public Module {
 public:
  DenseHidden(int64_t width, int64_t m, int64_t layer, Generator& gen);
  // Adds the earlier layers' transitions to y and hands y on through ctx.carry.
  Tensor fuse(const Tensor& y, const MixerContext& ctx) const;
  std::string describe() const override;

  int64_t m = 0, layer = 0;
  std::vector<std::shared_ptr<Linear>> proj, gate;  // phi_i = proj[i - 1], gate[i - 1]
};

}  // namespace tz::nn
