// Position Interpolation (Chen et al. 2023, arXiv:2306.15595); see pi_interpolation.h.
#include "nn/position/pi_interpolation.h"

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

InterpolatedRotary::InterpolatedRotary(double base_, double scale_) : RotaryPositions(base_), scale(scale_) {
  TZ_CHECK(scale >= 1, "pi_interpolation: 'rope_scale' (s = L_target / L_train) must be >= 1, got ", scale);
}

Tensor InterpolatedRotary::angles(int64_t start, int64_t T, int64_t D) const {
  const std::vector<double> theta = rotary_frequencies(D, base);
  const int64_t K = D / 2;
  Tensor a = empty({T, K}, DType::f64);
  double* ap = a.data<double>();
  for (int64_t t = 0; t < T; ++t) {
    const double m = double(start + t) / scale;  // m' = m L_train / L_target
    for (int64_t k = 0; k < K; ++k) ap[t * K + k] = m * theta[size_t(k)];
  }
  return a;
}

std::string InterpolatedRotary::describe() const {
  return cat_str("InterpolatedRotary(base=", base, ", scale=", scale, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_pi_interpolation(nn::Registry& r) {
  r.add({.id = "pi_interpolation",
         .summary = "RoPE at position m L_train / L_target: every position interpolated into the trained range",
         .keys = {nn::kRotaryBase, nn::kRopeScale},
         .test_config = R"({"pos": "pi_interpolation", "rope_scale": 4})",
         .example = R"({"pos": "pi_interpolation", "rope_scale": 4})",
         .position = [](const nn::ModelDims&, const nn::Config& c, Generator&) {
           return std::make_shared<nn::InterpolatedRotary>(c.get(nn::kRotaryBase), c.get(nn::kRopeScale));
         }});
}

}  // namespace tz::zoo
