// HGRN, the hierarchically gated recurrent network. "Hierarchically Gated Recurrent Neural
// Network for Sequence Modeling", Qin, Yang and Zhong 2023, arXiv:2311.04823 (sec. 3, eq. 3-7).
//
// Shape letters: B batch, T time, C model width (the recurrence is C complex numbers wide),
// l the layer index, L the depth.
//   f_t = sigmoid(W_f x_t + b_f),  lambda_t = gamma_l + (1 - gamma_l) f_t   (forget gate >= gamma_l)
//   c_t = silu(W_r x_t + b_r) + i silu(W_i x_t + b_i)                       (complex input)
//   h_t = lambda_t e^{i theta} h_{t-1} + (1 - lambda_t) c_t                  (complex, per channel)
//   o_t = LayerNorm(Re h_t) sigmoid(W_g x_t + b_g),  out = W_o o_t
// The recurrence is the complex scan of core/kernels/scan.h (pairs (re, im), a_t = lambda_t
// (cos theta, sin theta)); theta [C] is learned.
// Deviation: the paper learns the lower bounds, gamma = cumsum(softmax(Gamma)) over the layers
// (one table shared by the stack, the first layer's bound 0). A mixer here is built per layer,
// so the bounds are fixed at their value for the paper's initial Gamma = 0 (uniform softmax):
// gamma_l = l / L, 0 in the first layer and increasing with depth.
// Decoding: the state holds h [B, C, 2].
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

struct HgrnOptions {
  int64_t dim = 0;         // C
  double lower_bound = 0;  // gamma_l
};
HgrnOptions hgrn_options(const ModelDims& dims, const Config& config);

struct HgrnState : MixerState {
  Tensor h;  // [B, C, 2]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("h", h);
  }
};

class Hgrn : public Mixer {
 public:
  Hgrn(const HgrnOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The forget gate lambda [B, T, C] and the scan's complex inputs a, b [B, T, C, 2] for x.
  struct ScanInputs {
    Tensor lambda, a, b;
  };
  ScanInputs scan_inputs(const Tensor& x) const;

  HgrnOptions options;
  std::shared_ptr<Linear> f_proj, r_proj, i_proj, g_proj, out_proj;
  std::shared_ptr<LayerNorm> norm;
  Tensor theta;
};

}  // namespace tz::nn
