// The continuous-input wrapper (x-transformers' ContinuousTransformerWrapper). Shapes: B batch,
// T positions, S context positions, C width.
//   y = W_out norm(Layers(x W_in + b_in + pos, mask)) [B, T, dim_out]      x [B, T, dim_in]
// with causal or bidirectional self-attention; with `cross` every block also cross-attends to
// a context [B, S, dim_context] (the `cross_attention` catalogue id: CrossAttender-style
// conditioning). The layers are the zoo's blocks (models/encoder_stack.h).
#pragma once

#include <memory>

#include "models/model.h"
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::models {

class ContinuousWrapper : public Model {
 public:
  ContinuousWrapper(const nn::Config& config, const nn::Registry& registry, Generator& gen);
  using Model::forward;
  // {x [B, T, dim_in], mask i64 [B, T]} (+ {context [B, S, dim_context], context_mask}) → [B, T, dim_out]
  Tensor forward(const std::vector<Tensor>& inputs, State* state = nullptr, nn::AuxLosses* aux = nullptr) override;
  Tensor loss(const Batch& batch) override;                    // masked mean squared error
  Batch sample(int64_t batch, Generator& gen) const override;  // shift or context-mean regression
  int causal_input() const override { return causal ? 0 : -1; }
  std::string why_not_causal() const override { return causal ? "" : "bidirectional encoder (causal: false)"; }
  std::string why_no_step() const override { return "no cached step form in the wrapper"; }
  int64_t context() const override { return context_; }
  std::string describe() const override { return "ContinuousWrapper"; }

  int64_t dim_in = 0, dim_out = 0, dim = 0, dim_context = 0;
  bool causal = false, cross = false;
  std::shared_ptr<nn::Linear> project_in, project_out;
  std::shared_ptr<nn::PositionScheme> pos;
  std::shared_ptr<nn::ModuleList> layers;  // of Block
  std::shared_ptr<nn::UnaryModule> norm;

 private:
  int64_t context_ = 0;
};

std::vector<nn::ConfigKey> continuous_keys();

}  // namespace tz::models
