// The FFN with an elementwise gated recurrence inside. "Simple Recurrence Improves Masked
// Language Models", Lei, Tian, Bastings and Parikh 2022, arXiv:2205.11588.
//
// Shape letters: B batch, T time, C model width, F the plain FFN's hidden width, R the
// recurrence's width.
//   [u_t, p_t] = x_t W_in + b_in           W_in [C, 2R]
//   f_t = sigmoid(p_t)
//   c_t = f_t c_{t-1} + (1 - f_t) u_t      (SRU's light recurrence, the scan of core/scan.h)
//   y_t = gelu(c_t) W_out + b_out           W_out [R, C]
// Parameter count held at the plain FFN's, as the GLU variants hold theirs: the plain FFN
// has 2 C F weights, this one 3 C R, so R = 2 F / 3. With F divisible by 3 and no biases the
// counts are equal exactly; with biases this layer has F / 3 more (2 R input biases vs F).
// Bidirectional (an encoder, MLM): the first half of the R channels runs forward in time,
// the second half backward (the sequence reversed), so the count stays the same. Causal use
// runs forward only and decodes with the state c [B, R].
// Placement: the layer is stateful, and an FFN sublayer has no decoding state, so the
// registered model puts it in a mixer sublayer (norm, layer, residual: the same pre-norm
// block) after each attention sublayer: layout "ss" per block, mixer [attention, this].
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

struct SimpleRecurrenceOptions {
  int64_t dim = 0;     // C
  int64_t width = 0;   // R
  bool causal = true;  // false: half the channels run backward in time
  bool bias = true;
};
// R = 2 F / 3 with F = ffn_mult * C.
SimpleRecurrenceOptions simple_recurrence_options(const ModelDims& dims, const Config& config);

struct SimpleRecurrenceState : MixerState {
  Tensor c;  // [B, R]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("c", c);
  }
};

class SimpleRecurrenceFfn : public Mixer {
 public:
  SimpleRecurrenceFfn(const SimpleRecurrenceOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool causal() const override { return options.causal; }
  bool has_step() const override { return options.causal; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The scan's inputs for x: a = f, b = (1 - f) u, each [B, T, R].
  struct ScanInputs {
    Tensor a, b;
  };
  ScanInputs scan_inputs(const Tensor& x) const;
  // y from the recurrence's states c [B, T, R].
  Tensor output(const Tensor& c) const;

  SimpleRecurrenceOptions options;
  std::shared_ptr<Linear> in_proj, out_proj;
};

}  // namespace tz::nn
