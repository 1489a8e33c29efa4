// S4D (equations in s4d.h).
#include "nn/ssm/s4d.h"

#include <cmath>
#include <numbers>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/creation.h"
#include "nn/ssm/diagonal.h"
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

S4d::S4d(const S4dOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, P = o.state / 2;
  std::vector<float> dt(static_cast<size_t>(C)), re(static_cast<size_t>(C * P)), im(static_cast<size_t>(C * P));
  Tensor r = rand({C}, gen, DType::f64);
  for (int64_t c = 0; c < C; ++c)
    dt[size_t(c)] = float(std::log(o.dt_min) + r.at({c}) * (std::log(o.dt_max) - std::log(o.dt_min)));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t n = 0; n < P; ++n) {
      re[size_t(c * P + n)] = float(std::log(0.5));  // Re λ = -1/2
      im[size_t(c * P + n)] = float(o.inverse ? double(P) / std::numbers::pi * (double(P) / double(2 * n + 1) - 1)
                                              : std::numbers::pi * double(n));
    }
  log_dt = register_parameter("log_dt", from_vector(dt, {C}));
  A_log_re = register_parameter("A_log_re", from_vector(re, {C, P}));
  A_im = register_parameter("A_im", from_vector(im, {C, P}));
  C_re = register_parameter("C_re", randn({C, P}, gen, DType::f32, 0.0, std::sqrt(0.5)));
  C_im = register_parameter("C_im", randn({C, P}, gen, DType::f32, 0.0, std::sqrt(0.5)));
  D = register_parameter("D", randn({C}, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = C}, gen));
}

S4d::Discrete S4d::discretise() const {
  Tensor dt = exp(log_dt).unsqueeze(-1);  // [C, 1]
  Tensor a_re = -exp(A_log_re), a_im = A_im;
  Discrete d;
  d.dA_re = dt * a_re;
  d.dA_im = dt * a_im;
  Tensor e = exp(d.dA_re);
  d.Ab_re = e * cos(d.dA_im);
  d.Ab_im = e * sin(d.dA_im);
  // B̄ = (λ̄ - 1) / λ (B = 1): complex division in pairs
  Tensor num_re = d.Ab_re - 1.0, num_im = d.Ab_im, den = a_re * a_re + a_im * a_im;
  d.Bb_re = (num_re * a_re + num_im * a_im) / den;
  d.Bb_im = (num_im * a_re - num_re * a_im) / den;
  return d;
}

Tensor S4d::kernel(int64_t L) const {
  Discrete d = discretise();
  Tensor CB_re = C_re * d.Bb_re - C_im * d.Bb_im, CB_im = C_re * d.Bb_im + C_im * d.Bb_re;  // [C, P]
  return vandermonde_kernel(d.dA_re, d.dA_im, CB_re, CB_im, L) * 2.0;                       // [C, L]
}

Tensor S4d::convolve(const Tensor& u) const {
  return long_conv(u.transpose(1, 2), kernel(u.size(1)), D).transpose(1, 2);
}

Tensor S4d::recur(const Tensor& u, Tensor* h) const {
  Discrete d = discretise();
  Tensor y = diagonal_recur(
      u, {.a_re = d.Ab_re, .a_im = d.Ab_im, .b_re = d.Bb_re, .b_im = d.Bb_im, .c_re = C_re, .c_im = C_im}, h);
  return y * 2.0 + u * D;
}

Tensor S4d::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a convolution has no keys to mask and takes no segment memory");
  Tensor y;
  if (state) {  // continuing a sequence: the recurrence from the state
    S4dState& s = own_state<S4dState>(state, ctx);
    y = recur(x, &s.h);
    s.length += x.size(1);
  } else {
    y = convolve(x);
  }
  return out_proj->forward(gelu(y));
}

std::unique_ptr<MixerState> S4d::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<S4dState>();
  s->h = zeros({batch, options.dim * (options.state / 2), 2}, dtype);
  return s;
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
