#include "models/fcm.h"

#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::models {

double read_fcm_ratio(const nn::Config& c) {
  const double ratio = c.get(kFcmMaxRatio);
  TZ_CHECK(ratio >= 0 && ratio <= 1, c.source(), ": fcm_max_ratio must be in [0, 1], got ", ratio);
  return ratio;
}

Tensor draw_forgotten_keys(int64_t B, int64_t T, double ratio, Generator& gen) {
  std::vector<int64_t> forgotten(size_t(B * T), 0);
  std::vector<int64_t> order(static_cast<size_t>(T));
  bool any = false;
  for (int64_t b = 0; b < B; ++b) {
    const double r = gen.uniform() * ratio;
    const int64_t count = int64_t(std::floor(r * double(T)));
    for (int64_t i = 0; i < T; ++i) order[size_t(i)] = i;
    for (int64_t i = 0; i < count; ++i) {  // partial Fisher-Yates: `count` distinct positions
      std::swap(order[size_t(i)], order[size_t(gen.randint(i, T))]);
      const int64_t j = order[size_t(i)];
      any = any || j + 1 < T;
      forgotten[size_t(b * T + j)] = 1;
    }
  }
  return any ? from_vector(forgotten, {B, T}) : Tensor();
}

}  // namespace tz::models

namespace tz::zoo {

void register_forgetful_causal_masking(nn::Registry& r) {
  r.add({.id = "forgetful_causal_masking",
         .summary = "Training only: hide floor(rT), r~U[0,η], random past positions from all later queries",
         .keys = {models::kFcmMaxRatio},
         .test_config = R"({"fcm_max_ratio": 0.15})",
         .example = R"({"fcm_max_ratio": 0.15})"});
}

}  // namespace tz::zoo
