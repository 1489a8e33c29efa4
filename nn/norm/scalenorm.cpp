// ScaleNorm (Nguyen & Salazar 2019, arXiv:1910.05895); see scalenorm.h.
#include "nn/norm/scalenorm.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

ScaleNorm::ScaleNorm(const ScaleNormOptions& o) : options(o) {
  TZ_CHECK(o.dim > 0, "ScaleNorm: dim must be positive, got ", o.dim);
  TZ_CHECK(o.eps > 0, "ScaleNorm: norm_eps must be positive, got ", o.eps);
  gain = register_parameter("gain", full({1}, std::sqrt(double(o.dim))));
}

Tensor ScaleNorm::forward(const Tensor& x) const {
  TZ_CHECK(x.dim() >= 1 && x.size(-1) == options.dim, "ScaleNorm: expected input [..., ", options.dim, "], got ",
           x.shape());
  Tensor sq = sum(x * x, {-1}, true);  // ‖x‖²  [B, T, 1]
  Tensor inv = rsqrt(clamp(sq, options.eps * options.eps, std::numeric_limits<double>::infinity()));
  return x * inv * gain;
}

std::string ScaleNorm::describe() const { return cat_str("ScaleNorm(", options.dim, ", eps=", options.eps, ")"); }

}  // namespace tz::nn

namespace tz::zoo {

void register_scalenorm(nn::Registry& r) {
  r.add({.id = "scalenorm",
         .summary = "ScaleNorm g · x / max(‖x‖, eps) with one learned scalar g (init sqrt(dim))",
         .keys = {nn::kScaleNormEps},
         .test_config = R"({"norm": "scalenorm"})",
         .example = R"({"norm": "scalenorm"})",
         .norm = [](const nn::ModelDims& d, const nn::Config& c, Generator&) {
           double eps = c.get(nn::kScaleNormEps);
           TZ_CHECK(eps > 0, c.source(), ": norm_eps must be positive, got ", eps);
           return std::make_shared<nn::ScaleNorm>(nn::ScaleNormOptions{.dim = d.dim, .eps = eps});
         }});
}

}  // namespace tz::zoo
