// Rectified linear attention (attn_rela). "Sparse Attention with Linear Units", Zhang, Titov &
// Sennrich 2021, arXiv:2104.07012 (EMNLP 2021): ReLU replaces softmax, and a normalisation of
// each head's output takes the place of the softmax's row sums; ReLA-g gates it:
//   A_h = relu(Q_h K_h^T / √d + M)          (M = −∞ where masked, so relu gives exact 0)
//   z_h = RMSNorm(A_h V_h) ⊙ σ(x W_g)_h     per head, RMSNorm over the head's D channels with a
//                                           learned gain; W_g = 0, b_g = 0 at init (gate ½)
// then W^O as usual. Weights are not normalised: rows need not sum to 1, and every logit ≤ 0
// gives an exactly zero row (sparsity without a threshold search). Stages: normaliser
// (replaces softmax; needs the materialised scores) and values (the merged heads [B, T, H D]).
// The gate reads x at the same position, so decoding needs no state beyond the KV cache.
#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<bool> kRela{"attn_rela", false,
                      "ReLA: relu(QK^T/√d) weights, no softmax; each head's output RMS-normalised and gated"};
const Key<bool> kRelaGate{"attn_rela_gate", true, "ReLA-g: gate the normalised heads with σ(x W_g) (false: ReLA-i)"};

class Rela : public AttentionFeature {
 public:
  explicit Rela(bool gate) : gate_(gate) {}
  std::string key() const override { return kRela.name; }
  std::vector<Hook> hooks() const override { return {{Stage::normaliser, true}, {Stage::values}}; }
  std::string describe() const override { return gate_ ? ", rela-g" : ", rela"; }
  bool needs_scores(const AttentionCall&) const override { return true; }
  void build(Attention& a, Generator& gen) const override {
    const AttentionLayout& L = a.layout;
    a.add_parameter("rela_gain", ones({L.H * L.D}));
    if (gate_) a.add_linear("rela_gate", {.in = a.options.dim, .out = L.H * L.D, .bias = true, .init_std = 0.0}, gen);
  }
  Tensor normalise(const Attention&, const Tensor& s, const AttentionCall&) const override { return relu(s); }
  Tensor values(const Attention& a, const Tensor& m, const AttentionCall& c) const override {
    const AttentionLayout& L = a.layout;
    const int64_t B = m.size(0), T = m.size(1);
    Tensor z = rms_norm(m.reshape({B, T, L.H, L.D}), Tensor()).reshape({B, T, L.H * L.D}) * a.param("rela_gain");
    return gate_ ? z * sigmoid(a.linear("rela_gate")->forward(c.x)) : z;
  }

 private:
  bool gate_;
};
}  // namespace

AttentionFeatureInfo attn_feature_rela() {
  return {.name = "rela",
          .keys = {kRela, kRelaGate},
          .make = [](const AttentionOptions&, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            check_needs(c, kRelaGate, c.get(kRela), kRela);
            return c.get(kRela) ? std::make_shared<Rela>(c.get(kRelaGate)) : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_rela(nn::Registry& r) {
  r.add({.id = "rela",
         .summary = "ReLA: relu(QK^T/√d) weights (exact zeros, no softmax), per-head RMSNorm of A V, σ(x W_g) gate",
         .keys = nn::attention_config_keys("rela"),
         .test_config = R"({"attn_rela": true})",
         .example = R"({"attn_rela": true})"});
}

}  // namespace tz::zoo
