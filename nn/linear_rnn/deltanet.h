// DeltaNet: linear attention whose state is written by the delta rule. "Linear Transformers
// Are Secretly Fast Weight Programmers", Schlag, Irie, Schmidhuber 2021, arXiv:2102.11174
// (sec. 4.2, eq. 23-26), in the parameterisation of "Parallelizing Linear Transformers with
// the Delta Rule over Sequence Length", Yang et al. 2024, arXiv:2406.06484 (sec. 3, 5.1).
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head (key and value), K the
// short conv width.
//   a_t = SiLU(conv_K(x W_a)_t)  for a in q, k, v   (K = 0: SiLU(x_t W_a), no conv)
//   q_t = q_t / (|q_t| sqrt(D)),   k_t = k_t / |k_t|     (per head; L2 with eps 1e-6 under the root)
//   beta_t = σ(x_t W_β)  one per head, in (0, 1)
//   S_t = S_{t-1} + beta_t k_t^T (v_t - k_t S_{t-1}),   o_t = q_t S_t      (core/kernels/delta_rule.h)
//   out = RMSNorm_D(o) W_o   (the RMSNorm over each head's D channels, one weight [D])
// The feature map is the 2024 paper's (SiLU then L2, as flash-linear-attention's DeltaNet),
// not the 2021 paper's DPFP or sum normalisation: L2-normalised keys make I - beta k^T k a
// contraction for beta in (0, 2), so the state stays bounded. q carries 1/sqrt(D) as in
// scaled attention. The chunked WY form trains; decoding one token is the recurrent step.
// The state holds S [B, H, D, D] and the conv's last K - 1 inputs [B, K - 1, 3 C].
// Deviations: no biases; the q, k, v convs are one depthwise conv over the 3 C channels.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

inline const Key<int64_t> kDeltaConv{"deltanet_conv", 4,
                                     "K: width of the short causal conv on q, k, v before the delta rule; 0 = none"};

struct DeltaNetOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t conv = 4;   // K (0 = no conv)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;  // chunked or recurrent
};

struct DeltaNetState : MixerState {
  Tensor S;     // [B, H, D, D]
  Tensor conv;  // [B, K - 1, 3 C]; undefined when K <= 1
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("S", S);
    if (conv.defined()) v.tensor("conv", conv);
  }
};

class DeltaNet : public Mixer {
 public:
  DeltaNet(const DeltaNetOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The delta rule's inputs for x [B, T, C]: q, k, v [B, H, T, D] and beta [B, H, T]; the conv
  // continues `conv_state` when given.
  struct RuleInputs {
    Tensor q, k, v, beta;
  };
  RuleInputs rule_inputs(const Tensor& x, Tensor* conv_state) const;

  DeltaNetOptions options;
  std::shared_ptr<Linear> qkv_proj, beta_proj, o_proj;
  Tensor conv_weight, norm_weight;
};

}  // namespace tz::nn
