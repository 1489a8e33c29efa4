// TNN, the Toeplitz neural network's gated Toeplitz unit. "Toeplitz Neural Network for Sequence
// Modeling", Qin, Han, Sun, Li, Kong, Barnes and Zhong 2023, arXiv:2305.04749.
//
// Shape letters: B batch, T time (L = positions so far, the kernel's length), C model width,
// E = tnn_expand C the unit's inner width, W the RPE network's width.
// Gated Toeplitz unit (GTU):
//   u = SiLU(x W_u), v = SiLU(x W_v)              [B, T, E]
//   o = (u ⊙ TNO(v)) W_o                           [B, T, C]
// Toeplitz neural operator (TNO), one Toeplitz matrix per channel e, causal:
//   TNO(v)_{i,e} = Σ_{j<=i} t_{e, i-j} v_{j,e},   t_{e, ℓ} = RPE(ℓ)_e λ^ℓ  (t_ℓ = 0 for ℓ < 0)
//   RPE: a small MLP on the scalar offset ℓ: Linear(1, W) -> [LayerNorm -> ReLU -> Linear(W, W)]
//        x tnn_rpe_layers -> LayerNorm -> ReLU -> Linear(W, E); the LayerNorm of a 1-d input's
//        image keeps the features bounded as ℓ grows, so unseen offsets get finite coefficients;
//        Linear(1, W) starts with its kinks (a ℓ + b = 0) spread uniformly over 0..context
//   λ^ℓ = exp(ℓ log λ): the exponential decay bias, λ = tnn_decay (0.99 in the paper), fixed.
// T·v costs O(L^2) dense; the Toeplitz matvec is a causal convolution with kernel t, done by
// FFT in O(L log L) (core/long_conv.h).
// Decoding: no constant-size state (the kernel is not a recurrence): the state keeps the
// history of v up to its capacity and a step convolves it at the new positions only, so
// decoding gives the full forward's outputs. Without gradients the kernel is evaluated once
// for the state's whole capacity and kept in it, and a step of up to
// core::kLongConvTailSteps positions sums over the history directly (O(L E)); longer chunks
// transform the history.
// Deviation: the paper's TNN also has a GLU channel mixer; here that is the host model's FFN.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

inline const Key<int64_t> kTnnExpand{"tnn_expand", 1, "E / C: the gated Toeplitz unit's expansion"};
inline const Key<int64_t> kTnnRpeDim{"tnn_rpe_dim", 32, "W: width of the relative-position MLP"};
inline const Key<int64_t> kTnnRpeLayers{"tnn_rpe_layers", 1, "hidden W x W layers of the relative-position MLP"};
inline const Key<double> kTnnDecay{"tnn_decay", 0.99, "λ: the exponential decay bias of the Toeplitz kernel"};

struct TnnOptions {
  int64_t dim = 0;         // C
  int64_t expand = 1;      // E / C
  int64_t rpe_dim = 32;    // W
  int64_t rpe_layers = 1;  // hidden layers
  double decay = 0.99;     // λ
  int64_t context = 0;     // the offsets the RPE's first layer is initialised over
};
TnnOptions tnn_options(const ModelDims& dims, const Config& config);

struct TnnState : MixerState {
  Tensor v;  // [B, capacity, E]: v so far
  // [capacity, E]: the kernel t at every offset, evaluated at the first call without
  // gradients; a function of the weights alone, so not saved
  Tensor kernel;
  void visit(StateVisitor& vis) override {
    MixerState::visit(vis);
    vis.tensor("v", v);
  }
};

class Tnn : public Mixer {
 public:
  Tnn(const TnnOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  Tensor kernel(int64_t L, DType dtype) const;  // t [E, L]

  TnnOptions options;
  std::shared_ptr<Linear> u_proj, v_proj, o_proj, rpe_in, rpe_out;
  std::vector<std::shared_ptr<Linear>> rpe_hidden;
  std::vector<std::shared_ptr<LayerNorm>> rpe_norms;  // rpe_layers + 1
};

}  // namespace tz::nn
