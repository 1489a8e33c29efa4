// PanGu-π: Enhancing Language Model Architectures via Nonlinearity Compensation
// (Wang et al. 2023), arXiv:2312.17276.
//
// Two additions against the feature collapse of deep transformers, both with learned
// parameters. Shape letters: B batch, T time, C model width, F hidden width, R bottleneck.
//
// 1. Series informed activation in the FFN (the `pangu_pi` FFN id):
//      σ_s(h) = Σ_{i=1}^n a_i σ(h + b_i)          h = x W1 + b1 [B, T, F]
//      y      = σ_s(h) W2 + b2                     W1 [C, F], W2 [F, C]
//    a, b [n] learned and shared by all F channels of the layer; σ the `activation` entry of
//    the registry (activations.h), n = `series_terms`. Init a_i = 1/n and b_i evenly spaced
//    in [-½, ½] (b = 0 for n = 1): the sum starts as an average of shifted σ, and distinct b_i
//    keep the terms' gradients apart (equal b_i would stay equal for ever). n = 1, a = 1,
//    b = 0 is the base FFN exactly.
// 2. Augmented shortcut in the attention sublayer (the residual kind `augmented`):
//      x ← x + MSA(u) + Σ_{i=1}^m T_i(u),   T_i(u) = σ_T(u D_i) U_i,   u = norm(x)
//    D_i [C, R], U_i [R, C] the bottleneck factors of the paper's Θ_i, m = `aug_shortcuts`,
//    R = `aug_bottleneck` (0: C/4), σ_T = `aug_activation`. FFN sublayers keep the pre-norm
//    x + FFN(norm(x)): the shortcut belongs to the mixer sublayer only (the block says which
//    sublayer it builds, nn/residual/mixer_scope.h). Θ_i = 0 gives the standard pre-norm
//    residual exactly: U_i = 0 for any σ_T, D_i = 0 for a σ_T with σ_T(0) = 0 (gelu, relu,
//    silu, tanh, ...; not sigmoid or softplus).
//
// Deviations and choices:
// - The paper writes T_i(Z_l) on the block input Z_l of a post-LN ViT-style block. In this
//   pre-norm zoo the shortcuts read the normed u, the same input as the attention: then each
//   T_i sees unit-scale features at every depth, while x (the stream) grows with depth and
//   would make σ(x D_i) depend on the layer index. The identity path still carries x.
// - The paper's Θ_i is a full C×C matrix made cheap by a block-circulant structure (Tang et
//   al. 2021, arXiv:2106.15941) or, in PanGu-π, a bottleneck; here the bottleneck D_i U_i
//   with bias-free factors. D_i ~ N(0, 1/C) so that u D_i has unit scale, U_i ~ N(0, 0.02²)
//   as the other output projections.
// - The series shares a, b across channels (the paper's formula has one a_i, b_i per term);
//   an activation with a learned slope (prelu) is refused as the base, since its slope would
//   be a second learned parameter of the same σ.
#pragma once

#include "nn/ffn/mlp.h"

namespace tz::nn {

inline const Key<int64_t> kSeriesTerms{"series_terms", 2, "pangu_pi: n, the terms of Σ a_i σ(x + b_i) (≥ 1)"};
inline const Key<int64_t> kAugShortcuts{"aug_shortcuts", 1,
                                        "residual augmented: m, the shortcuts Σ σ(u D_i) U_i beside the mixer (≥ 1)"};
inline const Key<int64_t> kAugBottleneck{"aug_bottleneck", 0,
                                         "residual augmented: R, the bottleneck of each shortcut (0: dim / 4)"};
inline const Key<std::string> kAugActivation{"aug_activation", "gelu",
                                             "residual augmented: σ_T of the shortcuts, an activation without "
                                             "a learned slope"};

// Σ_i a_i σ(h + b_i) with a, b [n]: the series informed activation of `act`.
Tensor series_activation(const ActivationEntry& act, const Tensor& h, const Tensor& a, const Tensor& b);

// The FFN of pangu_pi: σ_s(x W1 + b1) W2 + b2. Parameters fc, proj, series_a [n], series_b [n].
class SeriesMLP : public UnaryModule {
 public:
  SeriesMLP(const MLPOptions& options, int64_t terms, Generator& gen);
  Tensor forward(const Tensor& x) const override;
  std::string describe() const override;
  MLPOptions options;
  std::shared_ptr<Linear> fc, proj;
  std::shared_ptr<Dropout> drop;
  Tensor series_a, series_b;  // [n]

 private:
  const ActivationEntry* act_;
};

}  // namespace tz::nn
