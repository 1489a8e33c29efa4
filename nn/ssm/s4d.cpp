// S4D (equations in s4d.h).
#include "nn/ssm/s4d.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

S4dOptions s4d_options(const ModelDims& dims, const Config& c) {
  S4dOptions o{.dim = dims.dim, .state = c.get(kSsmState), .dt_min = c.get(kSsmDtMin), .dt_max = c.get(kSsmDtMax)};
  const std::string src = c.source(), init = c.get(kS4dInit);
  TZ_CHECK(init == "lin" || init == "inv", src, ": s4d_init must be lin or inv, got '", init, "'");
  o.inverse = init == "inv";
  TZ_CHECK(o.state >= 2 && o.state % 2 == 0, src, ": ssm_state must be even and >= 2 (N / 2 complex modes), got ",
           o.state);
  TZ_CHECK(o.dt_min > 0 && o.dt_max >= o.dt_min, src, ": need 0 < ssm_dt_min <= ssm_dt_max, got ", o.dt_min, " and ",
           o.dt_max);
  TZ_CHECK(dims.causal, src, ": s4d is a causal convolution here; it has no bidirectional form");
  return o;
}

S4d::S4d(const S4dOptions& o, Generator& gen) : SsmBlock(o.dim), options(o) {
  ssm = register_module(
      "ssm", std::make_shared<DiagonalSsm>(
                 DiagonalSsmOptions{
                     .channels = o.dim, .state = o.state, .dt_min = o.dt_min, .dt_max = o.dt_max, .inverse = o.inverse},
                 gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = o.dim}, gen));
}

Tensor S4d::kernel(int64_t L) const { return ssm->kernel(L); }
Tensor S4d::convolve(const Tensor& u) const { return ssm->convolve(u); }
Tensor S4d::recur(const Tensor& u, Tensor* h) const { return ssm->recur(u, h); }

std::unique_ptr<MixerState> S4d::make_state(int64_t batch, int64_t, DType dtype) const {
  return state_with(zeros({batch, options.dim * (options.state / 2), 2}, dtype));
}

std::string S4d::describe() const {
  return "S4D(dim " + std::to_string(options.dim) + ", state " + std::to_string(options.state) + ", " +
         (options.inverse ? "S4D-Inv" : "S4D-Lin") + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_s4d(nn::Registry& r) {
  r.add({.id = "s4d",
         .summary = "S4D: diagonal SSM, Vandermonde kernel applied by FFT long convolution, recurrent decoding",
         .keys = {nn::kSsmState, nn::kSsmDtMin, nn::kSsmDtMax, nn::kS4dInit},
         .test_config = R"({"mixer": "s4d", "ssm_state": 32, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5})",
         .example = R"({"dim": 256, "mixer": "s4d", "ssm_state": 64, "norm": "layernorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::S4d>(nn::s4d_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
