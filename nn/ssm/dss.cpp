// DSS (equations in dss.h).
#include "nn/ssm/dss.h"

#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/creation.h"
#include "nn/ssm/diagonal.h"
#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

DssOptions dss_options(const ModelDims& dims, const Config& c) {
  DssOptions o{.dim = dims.dim,
               .state = c.get(kSsmState),
               .dt_min = c.get(kSsmDtMin),
               .dt_max = c.get(kSsmDtMax),
               .length = dims.context};
  const std::string src = c.source(), kind = c.get(kDssKernel);
  TZ_CHECK(kind == "exp" || kind == "softmax", src, ": dss_kernel must be exp or softmax, got '", kind, "'");
  o.softmax = kind == "softmax";
  TZ_CHECK(o.state >= 2 && o.state % 2 == 0, src, ": ssm_state must be even and >= 2 (N / 2 complex modes), got ",
           o.state);
  TZ_CHECK(o.dt_min > 0 && o.dt_max >= o.dt_min, src, ": need 0 < ssm_dt_min <= ssm_dt_max, got ", o.dt_min, " and ",
           o.dt_max);
  TZ_CHECK(!o.softmax || o.length > 0, src, ": dss_kernel softmax normalises over the context, which must be > 0");
  TZ_CHECK(dims.causal, src, ": dss is a causal convolution here; it has no bidirectional form");
  return o;
}

Dss::Dss(const DssOptions& o, Generator& gen) : SsmBlock(o.dim), options(o) {
  const int64_t C = o.dim, P = o.state / 2;
  std::vector<float> dt(static_cast<size_t>(C)), re(static_cast<size_t>(P)), im(static_cast<size_t>(P));
  Tensor r = rand({C}, gen, DType::f64);
  for (int64_t c = 0; c < C; ++c)
    dt[size_t(c)] = float(std::log(o.dt_min) + r.at({c}) * (std::log(o.dt_max) - std::log(o.dt_min)));
  const auto modes = legs_normal_modes(o.state);
  for (int64_t n = 0; n < P; ++n) {
    re[size_t(n)] = float(std::log(-modes[size_t(n)].real()));
    im[size_t(n)] = float(modes[size_t(n)].imag());
  }
  log_dt = register_parameter("log_dt", from_vector(dt, {C}));
  A_log_re = register_parameter("A_log_re", from_vector(re, {P}));
  A_im = register_parameter("A_im", from_vector(im, {P}));
  W_re = register_parameter("W_re", randn({C, P}, gen, DType::f32, 0.0, std::sqrt(0.5)));
  W_im = register_parameter("W_im", randn({C, P}, gen, DType::f32, 0.0, std::sqrt(0.5)));
  D = register_parameter("D", randn({C}, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = C}, gen));
}

Dss::Discrete Dss::discretise() const {
  Tensor dt = exp(log_dt).unsqueeze(-1);  // [C, 1]
  Tensor l_re = -exp(A_log_re), l_im = A_im;
  Discrete d;
  d.dA_re = dt * l_re;  // [C, P]
  d.dA_im = dt * l_im;
  Tensor e = exp(d.dA_re);
  d.a_re = e * cos(d.dA_im);
  d.a_im = e * sin(d.dA_im);
  // g = (e^{λΔ} - 1) / λ, then B̄ = w g
  Tensor num_re = d.a_re - 1.0, num_im = d.a_im, den = l_re * l_re + l_im * l_im;
  Tensor g_re = (num_re * l_re + num_im * l_im) / den, g_im = (num_im * l_re - num_re * l_im) / den;
  if (options.softmax) {  // divide g by e^{λΔL} - 1
    const double L = double(options.length);
    Tensor eL = exp(d.dA_re * L), q_re = eL * cos(d.dA_im * L) - 1.0, q_im = eL * sin(d.dA_im * L);
    Tensor qq = q_re * q_re + q_im * q_im;
    Tensor r_re = (g_re * q_re + g_im * q_im) / qq, r_im = (g_im * q_re - g_re * q_im) / qq;
    g_re = r_re;
    g_im = r_im;
  }
  d.b_re = W_re * g_re - W_im * g_im;
  d.b_im = W_re * g_im + W_im * g_re;
  return d;
}

Tensor Dss::kernel(int64_t L) const {
  Discrete d = discretise();
  return vandermonde_kernel(d.dA_re, d.dA_im, d.b_re, d.b_im, L);
}

Tensor Dss::convolve(const Tensor& u) const {
  return long_conv(u.transpose(1, 2), kernel(u.size(1)), D).transpose(1, 2);
}

Tensor Dss::recur(const Tensor& u, Tensor* h) const {
  Discrete d = discretise();
  return diagonal_recur(u, {.a_re = d.a_re, .a_im = d.a_im, .b_re = d.b_re, .b_im = d.b_im}, h) + u * D;
}

std::unique_ptr<MixerState> Dss::make_state(int64_t batch, int64_t, DType dtype) const {
  return state_with(zeros({batch, options.dim * (options.state / 2), 2}, dtype));
}

std::string Dss::describe() const {
  return "DSS(dim " + std::to_string(options.dim) + ", state " + std::to_string(options.state) + ", " +
         (options.softmax ? "DSS_softmax over " + std::to_string(options.length) : std::string("DSS_exp")) + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_dss(nn::Registry& r) {
  r.add({.id = "dss",
         .summary = "DSS: diagonal SSM from HiPPO-LegS's eigenvalues, exp or softmax kernel by FFT, recurrent decoding",
         .keys = {nn::kSsmState, nn::kSsmDtMin, nn::kSsmDtMax, nn::kDssKernel},
         .test_config = R"({"mixer": "dss", "ssm_state": 16, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5})",
         .example = R"({"dim": 256, "mixer": "dss", "ssm_state": 64, "norm": "layernorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::Dss>(nn::dss_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
