// B2T connection (Takase, Kiyono, Kobayashi & Suzuki 2023, "B2T Connection: Serving Stability
// and Performance in Deep Transformers", arXiv:2206.00330, Findings of ACL 2023):
// post-LN with a skip from the bottom of the block to the top of its last sublayer,
//   h = LN(x + Attn(x))
//   y = LN(h + FFN(h) + x)        x the block's input
// Post-LN's norms divide every path from a lower layer to the loss, so the gradients of the
// lower layers vanish as depth grows; the extra x term gives the block's input a path past
// the first norm, keeping lower-layer gradients near pre-LN's while the stream stays
// normalised as in post-LN (so the model ends without a final norm). With more sublayers
// (Macaron), the skip joins the block's last one.
// The proof (tests/zoo/proofs_residual_init.cpp) shows the paper's training claim at depth
// 18: B2T's loss falls below pre-LN's and far below post-LN's. The catalogue's gradient
// property does not show at the test's width (32) and length: post-LN's per-block gradient
// norms do not vanish towards the bottom there, so the test does not claim it.
#include "nn/residual/residual.h"

namespace tz::nn {

namespace {
class B2T : public Residual {
 public:
  Tensor forward(const Tensor& x, const UnaryModule* norm, const Branch& f) const override {
    return norm->forward(x + f(x));
  }
  Tensor forward_in_block(const Tensor& x, const UnaryModule* norm, const Branch& f, const Tensor& block_input,
                          bool last) const override {
    return last ? norm->forward(x + f(x) + block_input) : forward(x, norm, f);
  }
  bool final_norm() const override { return false; }
  std::string describe() const override { return "b2t (post-norm, bottom-to-top skip)"; }
};
}  // namespace

const ResidualKind& residual_kind_b2t() {
  static const ResidualKind kind{
      .name = "b2t",
      .make = [](const ModelDims&, const Config&) -> std::unique_ptr<Residual> { return std::make_unique<B2T>(); }};
  return kind;
}

}  // namespace tz::nn

namespace tz::zoo {

void register_b2t_residual(nn::Registry& r) {
  r.add(
      {.id = "b2t_residual",
       .summary = "B2T: post-LN block y = LN(h + FFN(h) + x), h = LN(x + Attn(x)): the block input skips to the top",
       .keys = {nn::kResidual},
       .test_config = R"({"residual": "b2t"})",
       .example = R"({"residual": "b2t", "depth": 18})",
       .learn_steps = 1000,
       .learn_reason =
           "post-LN-type stream, as pre_post_norm's post setting: 0.22 after the default 400 steps, 1.00 after 1000"});
}

}  // namespace tz::zoo
