// HGRN2, the gated linear RNN with state expansion. "HGRN2: Gated Linear RNNs with State
// Expansion", Qin, Yang, Sun, Shen, Li, Sun and Zhong 2024, arXiv:2404.07904.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head (key and value), l the
// layer index, L the depth.
// HGRN's elementwise recurrence with its input gate made an outer product (the state expands
// from D to D x D per head, no new parameters), per head:
//   f_t = β_l + (1 - β_l) σ(x_t W_f)          forget gate, bounded below by β_l   [D]
//   i_t = silu(x_t W_i)                        input                               [D]
//   q_t = silu(x_t W_q)                        HGRN's output gate, read as a query  [D]
//   S_t = diag(f_t) S_{t-1} + (1 - f_t)^T i_t,  o_t = q_t S_t
//   out = RMSNorm(o) W_o
// That is GLA (gla.h) with the key tied to 1 - f_t and the per key channel log-decay
// log f_t: the kernel (core/kernels/linear_attention.h) runs it, its chunked form for a
// whole sequence (linear_form, linear_chunk), the recurrent form for decoding.
// β_l: the paper learns the bounds, β = cumsum(softmax(Γ)) over the layers (the first layer's
// bound 0). Deviation, as hgrn.h: a mixer is built per layer, so the bounds are fixed at their
// value for the paper's initial Γ = 0: β_l = l / L. In layer 0 the log-decay is log σ(.)
// itself, formed without a log of a sum.
// The projections start at PyTorch's default scale (std 1/sqrt(C)), as hgrn.h's.
// Deviations: no biases in the projections; the RMSNorm over the C merged channels has a
// weight (1 at start).
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

struct Hgrn2Options {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  double lower_bound = 0;  // β_l in [0, 1): the forget gate's floor
};

class Hgrn2 : public Mixer {
 public:
  Hgrn2(const Hgrn2Options& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The kernel's inputs for x [B, T, C], each [B, H, T, D]: q, the key 1 - f, the input i
  // (the value) and the log-decay log f.
  struct Inputs {
    Tensor q, k, v, log_f;
  };
  Inputs inputs(const Tensor& x) const;

  Hgrn2Options options;
  std::shared_ptr<Linear> q_proj, f_proj, i_proj, o_proj;
  Tensor norm_weight;
};

}  // namespace tz::nn
