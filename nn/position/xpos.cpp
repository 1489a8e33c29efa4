// xPos (Sun et al. 2022, arXiv:2212.10554); see xpos.h.
#include "nn/position/xpos.h"

#include "nn/position/rope.h"
#include "nn/registry.h"

namespace tz::nn {

XPosPositions::XPosPositions(double base_, double scale_base_) : base(base_), scale_base(scale_base_) {
  TZ_CHECK(base > 1, "xpos: 'rotary_base' must be > 1, got ", base);
  TZ_CHECK(scale_base > 0, "xpos: 'xpos_scale_base' must be > 0, got ", scale_base);
}

void XPosPositions::rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const {
  q = apply_rotary(q, q_start, base, scale_base, +1.0);  // ζ^(m/γ)
  k = apply_rotary(k, k_start, base, scale_base, -1.0);  // ζ^(-n/γ)
}

std::string XPosPositions::describe() const {
  return cat_str("XPosPositions(base=", base, ", scale_base=", scale_base, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_xpos(nn::Registry& r) {
  r.add({.id = "xpos",
         .summary = "RoPE with a per-pair exponential decay ζ^((m-n)/γ) on the scores (length-extrapolatable)",
         .keys = {nn::kRotaryBase, nn::kXposScaleBase},
         .test_config = R"({"pos": "xpos"})",
         .example = R"({"pos": "xpos", "xpos_scale_base": 512})",
         .position = [](const nn::ModelDims&, const nn::Config& c, Generator&) {
           return std::make_shared<nn::XPosPositions>(c.get(nn::kRotaryBase), c.get(nn::kXposScaleBase));
         }});
}

}  // namespace tz::zoo
