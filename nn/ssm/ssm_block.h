// The block the linear time-invariant SSM layers share (S4, S4D, DSS, LSSL, S4-FouT):
//   out = out_proj(GELU(y)),  y = the SSM of x [B, T, C]
// with y by the layer's convolution form over a whole sequence, or by its recurrence from the
// state when a sequence is continued (prefill, decoding). A layer gives convolve() and
// recur(), registers out_proj, and makes its state (SsmState, h shaped as its recurrence needs).
#pragma once

#include <memory>

#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

struct SsmState : MixerState {
  Tensor h;  // the recurrence's state
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("h", h);
  }
};

class SsmBlock : public Mixer {
 public:
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }

  // The SSM alone (before GELU and out_proj). u [B, T, C].
  virtual Tensor convolve(const Tensor& u) const = 0;                    // the convolution form
  virtual Tensor recur(const Tensor& u, Tensor* h = nullptr) const = 0;  // *h: initial, then final state

  std::shared_ptr<Linear> out_proj;

 protected:
  explicit SsmBlock(int64_t dim) : dim_(dim) {}
  // A state holding h (zeros of the layer's state shape).
  static std::unique_ptr<MixerState> state_with(Tensor h);

 private:
  int64_t dim_;  // C
};

}  // namespace tz::nn
