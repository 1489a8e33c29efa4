// NTK-aware scaled RoPE and dynamic NTK (r/LocalLLaMA 2023); see ntk_aware_rope.h.
#include "nn/position/ntk_aware_rope.h"

#include <algorithm>
#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

NtkRotary::NtkRotary(double base_, double scale_, int64_t train_len_)
    : RotaryPositions(base_), scale(scale_), train_len(train_len_) {
  TZ_CHECK(scale >= 1, "ntk_aware_rope: 'rope_scale' (s) must be >= 1, got ", scale);
  TZ_CHECK(train_len >= 0, "ntk_aware_rope: 'rope_train_len' must be >= 1, got ", train_len);
  TZ_CHECK(train_len == 0 || scale == 1,
           "ntk_aware_rope: 'rope_scale' and 'ntk_dynamic' conflict: dynamic NTK takes s from the length");
}

double NtkRotary::scale_at(int64_t m) const {
  if (train_len == 0) return scale;
  return std::max(1.0, double(m + 1) / double(train_len));  // L_cur = m + 1 tokens
}

std::vector<double> NtkRotary::frequencies(int64_t D, double s) const {
  TZ_CHECK(D > 2, "ntk_aware_rope: the head size must be > 2 (b' = b s^(D/(D-2))), got ", D);
  return rotary_frequencies(D, base * std::pow(s, double(D) / double(D - 2)));
}

Tensor NtkRotary::angles(int64_t start, int64_t T, int64_t D) const {
  const int64_t K = D / 2;
  Tensor a = empty({T, K}, DType::f64);
  double* ap = a.data<double>();
  std::vector<double> theta;
  double theta_s = 0;  // the s theta was made for
  for (int64_t t = 0; t < T; ++t) {
    const double s = scale_at(start + t);
    if (theta.empty() || s != theta_s) theta = frequencies(D, theta_s = s);
    for (int64_t k = 0; k < K; ++k) ap[t * K + k] = double(start + t) * theta[size_t(k)];
  }
  return a;
}

std::string NtkRotary::describe() const {
  if (train_len > 0) return cat_str("NtkRotary(base=", base, ", dynamic, train_len=", train_len, ")");
  return cat_str("NtkRotary(base=", base, ", scale=", scale, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_ntk_aware_rope(nn::Registry& r) {
  r.add({.id = "ntk_aware_rope",
         .summary = "RoPE with base b s^(D/(D-2)): high frequencies kept, the lowest slowed by 1/s; or s from the "
                    "length (dynamic)",
         .keys = {nn::kRotaryBase, nn::kRopeScale, nn::kNtkDynamic, nn::kRopeTrainLen},
         .test_config = R"({"pos": "ntk_aware_rope", "ntk_dynamic": true, "rope_train_len": 4})",
         .example = R"({"pos": "ntk_aware_rope", "rope_scale": 4})",
         .position = [](const nn::ModelDims&, const nn::Config& c, Generator&) {
           const double base = c.get(nn::kRotaryBase);
           if (!c.get(nn::kNtkDynamic)) {
             TZ_CHECK(!c.has(nn::kRopeTrainLen),
                      "ntk_aware_rope: 'rope_train_len' is read by dynamic NTK only (set 'ntk_dynamic': true)");
             return std::make_shared<nn::NtkRotary>(base, c.get(nn::kRopeScale));
           }
           TZ_CHECK(!c.has(nn::kRopeScale),
                    "ntk_aware_rope: 'rope_scale' and 'ntk_dynamic' conflict: dynamic NTK takes s from the length");
           const int64_t L = c.get(nn::kRopeTrainLen);
           TZ_CHECK(L >= 1, "ntk_aware_rope: 'rope_train_len' must be >= 1, got ", L);
           return std::make_shared<nn::NtkRotary>(base, 1.0, L);
         }});
}

}  // namespace tz::zoo
