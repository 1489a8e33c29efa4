// Gated attention values (attn_gate_values), from AlphaFold2's gated self-attention
// ("Highly accurate protein structure prediction with AlphaFold", Jumper et al., Nature 2021,
// supplementary 1.6.2) as x-transformers' gate_values:
//   o_h = sigmoid(x W_g + b_g)_h * (A_h V_h)   per head and channel, before W_o,
// with W_g = 0, b_g = 1 at init (every gate starts at sigmoid(1)). Stage: values (a transform
// of the merged heads [B, T, H D]); the gate reads x at the same position, so decoding needs
// no state.
#include "autograd/ops.h"
#include "core/copy.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<bool> kGate{"attn_gate_values", false,
                      "gate each head's output with sigmoid(x W_g + b_g), W_g = 0, b_g = 1 at init"};

class GateValues : public AttentionFeature {
 public:
  std::string key() const override { return kGate.name; }
  std::vector<Hook> hooks() const override { return {{Stage::values}}; }
  std::string describe() const override { return ", gate_values"; }
  void build(Attention& a, Generator& gen) const override {
    const AttentionLayout& L = a.layout;
    auto g = a.add_linear("gate", {.in = a.options.dim, .out = L.H * L.D, .bias = true, .init_std = 0.0}, gen);
    core::fill_(g->bias, 1.0);
  }
  Tensor values(const Attention& a, const Tensor& m, const AttentionCall& c) const override {
    return m * sigmoid(a.linear("gate")->forward(c.x));
  }
};
}  // namespace

AttentionFeatureInfo attn_feature_gate_values() {
  return {.name = "gate_values",
          .keys = {kGate},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            return c.get(kGate) ? std::make_shared<GateValues>() : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_gate_values(nn::Registry& r) {
  r.add({.id = "gate_values",
         .paper = "Nature 2021 (AlphaFold2)",
         .summary = "Gated attention: o_h = sigmoid(x W_g + b_g) * (A_h V_h) before W_o; W_g = 0, b_g = 1 at init",
         .keys = nn::attention_config_keys("gate_values"),
         .test_config = R"({"attn_gate_values": true})",
         .example = R"({"attn_gate_values": true})"});
}

}  // namespace tz::zoo
