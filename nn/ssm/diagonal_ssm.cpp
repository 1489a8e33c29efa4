// The bare diagonal SSM (equations in diagonal_ssm.h and s4d.h).
#include "nn/ssm/diagonal_ssm.h"

#include <cmath>
#include <numbers>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/creation.h"
#include "nn/ssm/diagonal.h"

namespace tz::nn {

DiagonalSsm::DiagonalSsm(const DiagonalSsmOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.channels >= 1, "diagonal ssm: channels must be >= 1, got ", o.channels);
  TZ_CHECK(o.state >= 2 && o.state % 2 == 0, "diagonal ssm: ssm_state must be even and >= 2, got ", o.state);
  TZ_CHECK(o.dt_min > 0 && o.dt_max >= o.dt_min, "diagonal ssm: need 0 < ssm_dt_min <= ssm_dt_max, got ", o.dt_min,
           " and ", o.dt_max);
  const int64_t C = o.channels, P = o.state / 2;
  std::vector<float> dt(static_cast<size_t>(C)), re(static_cast<size_t>(C * P)), im(static_cast<size_t>(C * P));
  Tensor r = rand({C}, gen, DType::f64);
  for (int64_t c = 0; c < C; ++c) {
    dt[size_t(c)] = float(std::log(o.dt_min) + r.at({c}) * (std::log(o.dt_max) - std::log(o.dt_min)));
    for (int64_t n = 0; n < P; ++n) {
      re[size_t(c * P + n)] = float(std::log(0.5));  // Re λ = -1/2
      im[size_t(c * P + n)] = float(o.inverse ? double(P) / std::numbers::pi * (double(P) / double(2 * n + 1) - 1)
                                              : std::numbers::pi * double(n));
    }
  }
  log_dt = register_parameter("log_dt", from_vector(dt, {C}));
  A_log_re = register_parameter("A_log_re", from_vector(re, {C, P}));
  A_im = register_parameter("A_im", from_vector(im, {C, P}));
  C_re = register_parameter("C_re", randn({C, P}, gen, DType::f32, 0.0, std::sqrt(0.5)));
  C_im = register_parameter("C_im", randn({C, P}, gen, DType::f32, 0.0, std::sqrt(0.5)));
  if (o.skip) D = register_parameter("D", randn({C}, gen));
}

DiagonalSsm::Discrete DiagonalSsm::discretise() const {
  Tensor dt = exp(log_dt).unsqueeze(-1);  // [C, 1]
  Tensor a_re = -exp(A_log_re), a_im = A_im;
  Discrete d;
  d.dA_re = dt * a_re;
  d.dA_im = dt * a_im;
  Tensor e = exp(d.dA_re);
  d.Ab_re = e * cos(d.dA_im);
  d.Ab_im = e * sin(d.dA_im);
  Tensor num_re = d.Ab_re - 1.0, num_im = d.Ab_im, den = a_re * a_re + a_im * a_im;  // (λ̄ - 1) / λ
  d.Bb_re = (num_re * a_re + num_im * a_im) / den;
  d.Bb_im = (num_im * a_re - num_re * a_im) / den;
  return d;
}

Tensor DiagonalSsm::kernel(int64_t L) const {
  Discrete d = discretise();
  Tensor CB_re = C_re * d.Bb_re - C_im * d.Bb_im, CB_im = C_re * d.Bb_im + C_im * d.Bb_re;  // [C, P]
  return vandermonde_kernel(d.dA_re, d.dA_im, CB_re, CB_im, L) * 2.0;                       // [C, L]
}

Tensor DiagonalSsm::convolve(const Tensor& u, bool direct) const {
  return long_conv(u.transpose(1, 2), kernel(u.size(1)), D, {.reference = direct}).transpose(1, 2);
}

Tensor DiagonalSsm::recur(const Tensor& u, Tensor* h) const {
  Discrete d = discretise();
  Tensor y = diagonal_recur(
      u, {.a_re = d.Ab_re, .a_im = d.Ab_im, .b_re = d.Bb_re, .b_im = d.Bb_im, .c_re = C_re, .c_im = C_im}, h);
  return D.defined() ? y * 2.0 + u * D : y * 2.0;
}

std::string DiagonalSsm::describe() const {
  return cat_str("DiagonalSsm(channels ", options.channels, ", state ", options.state, ")");
}

}  // namespace tz::nn
