#include "models/universal.h"

#include "autograd/ops.h"
#include "nn/position/absolute.h"
#include "nn/registry.h"

namespace tz::models {

Recurrence read_recurrence(const nn::Config& c, int64_t depth, bool act) {
  Recurrence r{.shared = c.get(kShareLayers) || act, .steps = c.get(kRecurrenceSteps)};
  TZ_CHECK(r.steps >= 0, c.source(), ": recurrence_steps must be >= 0, got ", r.steps);
  TZ_CHECK(r.shared || !c.has(kRecurrenceSteps.name), c.source(), ": recurrence_steps needs share_layers or act");
  if (r.steps == 0) r.steps = depth;
  return r;
}

Tensor step_signal(const nn::PositionScheme& pos, int64_t start, int64_t T, int64_t t, int64_t dim, DType dtype) {
  Tensor s = nn::sinusoidal_table(t, 1, dim, 10000.0, dtype) * 0.02;  // [1, C]
  Tensor p = pos.embed(start, T, dtype);
  return p.defined() ? p + s : s;
}

std::vector<nn::ConfigKey> recurrence_keys() { return {kShareLayers, kRecurrenceSteps}; }

}  // namespace tz::models

namespace tz::zoo {

void register_universal_transformer(nn::Registry& r) {
  r.add({.id = "universal_transformer",
         .summary = "One shared block applied T times, adding position + step-t sinusoids before each",
         .keys = {models::kShareLayers, models::kRecurrenceSteps},
         .test_config = R"({"share_layers": true, "recurrence_steps": 2, "dim": 32, "heads": 4})",
         .example = R"({"share_layers": true, "recurrence_steps": 6, "norm_placement": "post"})"});
}

}  // namespace tz::zoo
