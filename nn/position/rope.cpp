// Rotary position embedding (Su et al. 2021, arXiv:2104.09864); see rope.h.
#include "nn/position/rope.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

Tensor apply_rotary(const Tensor& x, int64_t start, double base, double scale_base, double sign) {
  TZ_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rotary: expected x [B, H, T, D] with D even, got ", x.shape());
  const int64_t T = x.size(2), D = x.size(3), K = D / 2;
  // The angle (and xPos scale) tables [T, K], built in f64 with plain loops.
  Tensor c = empty({T, K}, DType::f64), s = empty({T, K}, DType::f64);
  double* cp = c.data<double>();
  double* sp = s.data<double>();
  const std::vector<double> thetas = rotary_frequencies(D, base);
  for (int64_t t = 0; t < T; ++t) {
    const double m = double(start + t);
    for (int64_t k = 0; k < K; ++k) {
      const double theta = thetas[size_t(k)];
      double scale = 1.0;
      if (scale_base > 0) {
        const double zeta = (2.0 * double(k) / double(D) + 0.4) / 1.4;
        scale = std::pow(zeta, sign * m / scale_base);
      }
      cp[t * K + k] = scale * std::cos(m * theta);
      sp[t * K + k] = scale * std::sin(m * theta);
    }
  }
  return rotate_pairs(x, c, s);
}

Tensor rotate_pairs(const Tensor& x, Tensor c, Tensor s) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), K = D / 2;
  const Shape table{T, K};
  TZ_CHECK(c.shape() == table && s.shape() == table, "rotary: expected cos/sin tables [", T, ", ", K, "], got ",
           c.shape(), " and ", s.shape());
  c = c.to(x.dtype());
  s = s.to(x.dtype());
  Tensor pairs = x.reshape({B, H, T, K, 2});
  Tensor even = pairs.select(4, 0), odd = pairs.select(4, 1);  // [B, H, T, K]
  Tensor out = stack({even * c - odd * s, even * s + odd * c}, 4);
  return out.reshape({B, H, T, D});
}

std::vector<double> rotary_frequencies(int64_t D, double base) {
  std::vector<double> theta(size_t(D / 2));
  for (int64_t k = 0; k < D / 2; ++k) theta[size_t(k)] = std::pow(base, -2.0 * double(k) / double(D));
  return theta;
}

Tensor rotate_by_angles(const Tensor& x, const Tensor& angles, double magnitude) {
  TZ_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rotary: expected x [B, H, T, D] with D even, got ", x.shape());
  TZ_CHECK(angles.dtype() == DType::f64 && angles.is_contiguous(), "rotary: expected a contiguous f64 angle table");
  const int64_t n = angles.numel();
  Tensor c = empty(angles.shape(), DType::f64), s = empty(angles.shape(), DType::f64);
  const double* a = angles.data<double>();
  double* cp = c.data<double>();
  double* sp = s.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    cp[i] = magnitude * std::cos(a[i]);
    sp[i] = magnitude * std::sin(a[i]);
  }
  return rotate_pairs(x, c, s);
}

RotaryPositions::RotaryPositions(double base_) : base(base_) {
  TZ_CHECK(base > 1, "rope: 'rotary_base' must be > 1, got ", base);
}

void RotaryPositions::rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4, "rotary: expected q, k [B, H, T, D], got ", q.shape(), " and ", k.shape());
  q = rotate_by_angles(q, angles(q_start, q.size(2), q.size(3)), magnitude());
  k = rotate_by_angles(k, angles(k_start, k.size(2), k.size(3)), magnitude());
}

Tensor RotaryPositions::angles(int64_t start, int64_t T, int64_t D) const {
  const std::vector<double> theta = rotary_frequencies(D, base);
  const int64_t K = D / 2;
  Tensor a = empty({T, K}, DType::f64);
  double* ap = a.data<double>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) ap[t * K + k] = double(start + t) * theta[size_t(k)];
  return a;
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
