// Multi-dconv-head attention (attn_dconv). "Primer: Searching for Efficient Transformers for
// Language Modeling", So et al. 2021, arXiv:2109.08668 (sec. 2, MDHA).
// After the projections, each channel of q, k and v is convolved causally over time with its
// own width-3 kernel: y_t = w_0 x_{t-2} + w_1 x_{t-1} + w_2 x_t (zero before the start).
// The kernel starts at [0, 0, 1] (plain attention). Stage: projections (a transform).
// Decoding keeps the last 2 projected (pre-conv) inputs in the state, so a step or a chunk
// continues the convolution exactly. Refused in cross-attention (the context is not x's past).
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<bool> kDconv{"attn_dconv", false, "Primer: causal depthwise conv of width 3 on q, k, v (identity init)"};

class PrimerDconv : public AttentionFeature {
 public:
  std::string key() const override { return kDconv.name; }
  std::vector<Hook> hooks() const override { return {{Stage::projections}}; }
  std::string describe() const override { return ", dconv"; }
  void build(Attention& a, Generator&) const override {
    const AttentionLayout& L = a.layout;
    Tensor w = zeros({L.q_width() + L.k_width() + L.v_width(), 3});
    core::fill_(w.narrow(1, 2, 1), 1.0);  // identity kernel [0, 0, 1]
    a.add_parameter("dconv", w);
  }
  void init_state(const Attention& a, KVState& s, int64_t batch, DType dtype) const override {
    s.extra[key()] = zeros({batch, 2, a.param("dconv").size(0)}, dtype);
  }
  Tensor projections(const Attention& a, const Tensor& full, const AttentionCall& c) const override {
    Tensor w = a.param("dconv");
    if (!c.state) return conv1d_causal(full, w);
    Tensor& last = c.state->extra.at(key());  // continue from the last two inputs of the cache
    const int64_t T = full.size(1);
    Tensor seq = cat({last, full}, 1);
    last = seq.narrow(1, T, 2).contiguous();
    return conv1d_causal(seq, w).narrow(1, 2, T);
  }
};
}  // namespace

AttentionFeatureInfo attn_feature_primer_dconv() {
  return {.name = "primer_dconv",
          .keys = {kDconv},
          .make = [](const AttentionOptions& o, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            if (!c.get(kDconv)) return nullptr;
            TZ_CHECK(o.context_dim == 0,
                     "Attention: attn_dconv convolves over x's own positions; a cross-attention "
                     "layer's keys come from the context");
            return std::make_shared<PrimerDconv>();
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_primer_dconv(nn::Registry& r) {
  r.add(
      {.id = "primer_mdha",
       .paper = "arXiv:2109.08668",
       .summary = "Primer multi-dconv-head attention: causal depthwise conv (width 3) over time on q, k, v per channel",
       .keys = nn::attention_config_keys("primer_dconv"),
       .test_config = R"({"attn_dconv": true})",
       .example = R"({"attn_dconv": true})"});
}

}  // namespace tz::zoo
