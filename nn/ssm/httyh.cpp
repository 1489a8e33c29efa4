// S4-FouT / S4-LegS of "How to Train Your HiPPO" (see httyh.h).
#include "nn/ssm/httyh.h"

#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

S4Options httyh_options(const ModelDims& dims, const Config& config) {
  S4Options o = s4_options(dims, config, kHttyhMeasure);
  o.name = o.fout ? "S4-FouT" : "S4-LegS";
  return o;
}

}  // namespace tz::nn

namespace tz::zoo {

void register_httyh_s4(nn::Registry& r) {
  r.add({.id = "httyh_s4",
         .summary =
             "S4-FouT / S4-LegS: S4 from a sliding Fourier (or warped Legendre) projection, log-uniform timescales",
         .keys = {nn::kSsmState, nn::kSsmDtMin, nn::kSsmDtMax, nn::kHttyhMeasure},
         .test_config = R"({"mixer": "httyh_s4", "ssm_state": 9, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5})",
         .example = R"({"dim": 256, "mixer": "httyh_s4", "ssm_state": 65, "norm": "layernorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::S4>(nn::httyh_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
