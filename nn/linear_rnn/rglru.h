// The Hawk recurrent block with the RG-LRU (Real-Gated Linear Recurrent Unit). "Griffin: Mixing
// Gated Linear Recurrences with Local Attention for Efficient Language Models", De et al.
// 2024, arXiv:2402.19427 (sec. 2.4, fig. 2, eq. 1-6).
//
// Shape letters: B batch, T time, C model width, E the recurrence width (rnn_width, default
// C as in Hawk's tiny configs; the paper uses 4/3 C), K the conv width.
//   y = GeLU(W_y x)                                    [B, T, E]  the gate branch
//   v = causal depthwise conv1d_K(W_v x)               [B, T, E]  (conv state: last K - 1 inputs)
//   r_t = sigmoid(W_a v_t + b_a),  i_t = sigmoid(W_i v_t + b_i)
//   log a_t = -c softplus(-Lambda) r_t                 (a_t = sigmoid(Lambda)^(c r_t), c = 8)
//   h_t = a_t h_{t-1} + sqrt(1 - a_t^2) (i_t v_t)      (the scan of core/kernels/scan.h)
//   out = W_o (y h)
// Lambda is initialised so that a^c = sigmoid(Lambda)^c is uniform in [0.9, 0.999] (sec. 2.4).
// a_t is computed from log a_t; 1 - a_t^2 is floored at 1e-6 before the square root, so its
// derivative stays bounded (Griffin's code bounds it too) when a_t rounds to 1. Deviation: W_a and W_i are full C x E
// matrices here; the paper makes them block-diagonal (one block per head) to save parameters. Decoding: the state holds
// the conv's last K - 1 inputs and h [B, E].
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

inline const Key<int64_t> kRnnWidth{"rnn_width", 0, "E: width of the recurrence; 0 = the model width"};
inline const Key<int64_t> kRnnConv{"rnn_conv", 4, "K: width of the causal depthwise conv before the RG-LRU"};
inline const Key<double> kRglruC{"rglru_c", 8.0, "c: the exponent scale of the RG-LRU decay a^(c r_t)"};

struct RglruOptions {
  int64_t dim = 0;    // C
  int64_t width = 0;  // E (0 = C)
  int64_t conv = 4;   // K
  double c = 8.0;
};
RglruOptions rglru_options(const ModelDims& dims, const Config& config);

struct RglruState : MixerState {
  Tensor conv;  // [B, K - 1, E]
  Tensor h;     // [B, E]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("conv", conv);
    v.tensor("h", h);
  }
};

class Rglru : public Mixer {
 public:
  Rglru(const RglruOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The recurrence's inputs for x: a_t and b_t = sqrt(1 - a_t^2) i_t v_t, each [B, T, E], and
  // the gate branch y (for tests).
  struct ScanInputs {
    Tensor a, b, y;
  };
  ScanInputs scan_inputs(const Tensor& x, Tensor* conv_state) const;

  RglruOptions options;
  std::shared_ptr<Linear> gate_proj, in_proj, a_proj, i_proj, out_proj;
  Tensor conv_weight, conv_bias, Lambda;
};

}  // namespace tz::nn
