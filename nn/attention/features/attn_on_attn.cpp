// Attention on attention (attn_on_attn). "Attention on Attention for Image Captioning", Huang
// et al. 2019, arXiv:1908.06954, in x-transformers' form: the output projection W_o: H D -> 2 C
// feeds a GLU, out = (v_hat W + b)_{:C} * sigmoid((v_hat W + b)_{C:}), replacing the plain W_o.
// Stage: output (replaces the output projection's form).
#include "autograd/ops.h"
#include "nn/attention/attention.h"

namespace tz::nn {

namespace {
const Key<bool> kOnAttn{"attn_on_attn", false,
                        "attention on attention: GLU over the attended values replaces the output projection"};

class AttnOnAttn : public AttentionFeature {
 public:
  explicit AttnOnAttn(int64_t dim) : dim_(dim) {}
  std::string key() const override { return kOnAttn.name; }
  std::vector<Hook> hooks() const override { return {{Stage::output, true}}; }
  std::string describe() const override { return ", on_attn"; }
  void layout(AttentionLayout& L) const override { L.out_width = 2 * dim_; }
  Tensor output(const Attention&, const Tensor& o, const AttentionCall&) const override {
    return o.narrow(-1, 0, dim_) * sigmoid(o.narrow(-1, dim_, dim_));  // GLU
  }

 private:
  int64_t dim_;
};
}  // namespace

AttentionFeatureInfo attn_feature_attn_on_attn() {
  return {.name = "attn_on_attn",
          .keys = {kOnAttn},
          .make = [](const AttentionOptions& o, const Config& c) -> std::shared_ptr<const AttentionFeature> {
            return c.get(kOnAttn) ? std::make_shared<AttnOnAttn>(o.dim) : nullptr;
          }};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_attn_on_attn(nn::Registry& r) {
  r.add({.id = "attn_on_attn",
         .paper = "arXiv:1908.06954",
         .summary = "Attention on attention (x-transformers form): out = GLU(v_hat W), W: H D -> 2 C, replaces W_o",
         .keys = nn::attention_config_keys("attn_on_attn"),
         .test_config = R"({"attn_on_attn": true})",
         .example = R"({"attn_on_attn": true})"});
}

}  // namespace tz::zoo
