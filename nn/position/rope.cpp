// Rotary position embedding (Su et al. 2021, arXiv:2104.09864); see rope.h.
#include "nn/position/rope.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

Tensor apply_rotary(const Tensor& x, int64_t start, double base, double scale_base, double sign) {
  TZ_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rotary: expected x [B, H, T, D] with D even, got ", x.shape());
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), K = D / 2;
  // The angle (and xPos scale) tables [T, K], built in f64 with plain loops.
  Tensor c = empty({T, K}, DType::f64), s = empty({T, K}, DType::f64);
  double* cp = c.data<double>();
  double* sp = s.data<double>();
  for (int64_t t = 0; t < T; ++t) {
    const double m = double(start + t);
    for (int64_t k = 0; k < K; ++k) {
      const double theta = std::pow(base, -2.0 * double(k) / double(D));
      double scale = 1.0;
      if (scale_base > 0) {
        const double zeta = (2.0 * double(k) / double(D) + 0.4) / 1.4;
        scale = std::pow(zeta, sign * m / scale_base);
      }
      cp[t * K + k] = scale * std::cos(m * theta);
      sp[t * K + k] = scale * std::sin(m * theta);
    }
  }
  c = c.to(x.dtype());
  s = s.to(x.dtype());
  Tensor pairs = x.reshape({B, H, T, K, 2});
  Tensor even = pairs.select(4, 0), odd = pairs.select(4, 1);  // [B, H, T, K]
  Tensor out = stack({even * c - odd * s, even * s + odd * c}, 4);
  return out.reshape({B, H, T, D});
}

RotaryPositions::RotaryPositions(double base_) : base(base_) {
  TZ_CHECK(base > 1, "rope: 'rotary_base' must be > 1, got ", base);
}

void RotaryPositions::rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const {
  q = apply_rotary(q, q_start, base);
  k = apply_rotary(k, k_start, base);
}

std::string RotaryPositions::describe() const { return cat_str("RotaryPositions(base=", base, ")"); }

}  // namespace tz::nn

namespace tz::zoo {

void register_rope(nn::Registry& r) {
  r.add({.id = "rope",
         .summary = "Rotary embedding: q and k rotated pairwise by position-proportional angles in every layer",
         .keys = {nn::kRotaryBase},
         .test_config = R"({"pos": "rope"})",
         .example = R"({"pos": "rope", "rotary_base": 10000})",
         .position = [](const nn::ModelDims&, const nn::Config& c, Generator&) {
           return std::make_shared<nn::RotaryPositions>(c.get(nn::kRotaryBase));
         }});
}

}  // namespace tz::zoo
