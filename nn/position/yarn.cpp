// YaRN (Peng et al. 2023, arXiv:2309.00071); see yarn.h.
#include "nn/position/yarn.h"

#include <cmath>
#include <numbers>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

double yarn_ramp(double r, double alpha, double beta) {
  if (r < alpha) return 0.0;
  if (r > beta) return 1.0;
  return (r - alpha) / (beta - alpha);
}

double yarn_magnitude(double s) { return 0.1 * std::log(s) + 1.0; }

YarnRotary::YarnRotary(double base_, double scale_, int64_t train_len_, double alpha_, double beta_)
    : RotaryPositions(base_), scale(scale_), train_len(train_len_), alpha(alpha_), beta(beta_) {
  TZ_CHECK(scale >= 1, "yarn: 'rope_scale' (s = L_target / L_train) must be >= 1, got ", scale);
  TZ_CHECK(train_len >= 1, "yarn: 'rope_train_len' must be >= 1, got ", train_len);
  TZ_CHECK(alpha > 0 && beta > alpha, "yarn: expected 0 < 'yarn_alpha' < 'yarn_beta', got ", alpha, " and ", beta);
}

std::vector<double> YarnRotary::frequencies(int64_t D) const {
  std::vector<double> theta = rotary_frequencies(D, base);
  for (double& th : theta) {
    const double lambda = 2.0 * std::numbers::pi / th;  // wavelength λ_k
    const double g = yarn_ramp(double(train_len) / lambda, alpha, beta);
    th = (1.0 - g) * th / scale + g * th;
  }
  return theta;
}

Tensor YarnRotary::angles(int64_t start, int64_t T, int64_t D) const {
  const std::vector<double> theta = frequencies(D);
  const int64_t K = D / 2;
  Tensor a = empty({T, K}, DType::f64);
  double* ap = a.data<double>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) ap[t * K + k] = double(start + t) * theta[size_t(k)];
  return a;
}

std::string YarnRotary::describe() const {
  return cat_str("YarnRotary(base=", base, ", scale=", scale, ", train_len=", train_len, ", alpha=", alpha,
                 ", beta=", beta, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_yarn(nn::Registry& r) {
  r.add({.id = "yarn",
         .summary = "RoPE interpolated per pair by its turns over L_train (NTK-by-parts) with logit temperature "
                    "0.1 ln s + 1",
         .keys = {nn::kRotaryBase, nn::kRopeScale, nn::kRopeTrainLen, nn::kYarnAlpha, nn::kYarnBeta},
         .test_config = R"({"pos": "yarn", "rope_scale": 4, "rope_train_len": 64})",
         .example = R"({"pos": "yarn", "rope_scale": 4, "rope_train_len": 512})",
         .position = [](const nn::ModelDims&, const nn::Config& c, Generator&) {
           return std::make_shared<nn::YarnRotary>(c.get(nn::kRotaryBase), c.get(nn::kRopeScale),
                                                   c.get(nn::kRopeTrainLen), c.get(nn::kYarnAlpha),
                                                   c.get(nn::kYarnBeta));
         }});
}

}  // namespace tz::zoo
