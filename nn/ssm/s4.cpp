// S4 (equations in s4.h).
#include "nn/ssm/s4.h"

#include <cmath>
#include <numbers>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/creation.h"
#include "core/kernels/ssm_kernels.h"
#include "nn/ssm/complex_pair.h"
#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

S4Options s4_options(const ModelDims& dims, const Config& c, const Key<std::string>& measure) {
  S4Options o{.dim = dims.dim, .state = c.get(kSsmState), .dt_min = c.get(kSsmDtMin), .dt_max = c.get(kSsmDtMax)};
  const std::string src = c.source(), m = c.get(measure);
  TZ_CHECK(m == "legs" || m == "fout", src, ": ", measure.name, " must be legs or fout, got '", m, "'");
  o.fout = m == "fout";
  TZ_CHECK(o.state >= 1 && o.state <= 512, src, ": ssm_state must be in [1, 512] (dense N x N powers), got ", o.state);
  TZ_CHECK(o.dt_min > 0 && o.dt_max >= o.dt_min, src, ": need 0 < ssm_dt_min <= ssm_dt_max, got ", o.dt_min, " and ",
           o.dt_max);
  TZ_CHECK(dims.causal, src, ": ", m, " S4 is a causal convolution here; it has no bidirectional form");
  return o;
}

S4::S4(const S4Options& o, Generator& gen) : SsmBlock(o.dim), options(o) {
  const int64_t Cn = o.dim, N = o.state;
  const kernels::Nplr r = o.fout ? kernels::nplr(kernels::hippo_fout(N), kernels::fout_low_rank(N))
                                 : kernels::nplr(kernels::hippo_legs(N), kernels::legs_low_rank(N));
  auto part = [&](const std::vector<kernels::cplx>& v, bool imag) {
    std::vector<double> x(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) x[size_t(n)] = imag ? v[size_t(n)].imag() : v[size_t(n)].real();
    return from_vector(x, {N}).to(DType::f32);
  };
  Tensor rnd = rand({Cn}, gen, DType::f64);
  log_dt = register_parameter("log_dt",
                              (std::log(o.dt_min) + rnd * (std::log(o.dt_max) - std::log(o.dt_min))).to(DType::f32));
  A_re = register_parameter("A_re", part(r.lambda, false));
  A_im = register_parameter("A_im", part(r.lambda, true));
  P_re = register_parameter("P_re", part(r.P, false));
  P_im = register_parameter("P_im", part(r.P, true));
  B_re = register_parameter("B_re", part(r.B, false));
  B_im = register_parameter("B_im", part(r.B, true));
  C_re = register_parameter("C_re", randn({Cn, N}, gen, DType::f32, 0.0, std::sqrt(0.5)));
  C_im = register_parameter("C_im", randn({Cn, N}, gen, DType::f32, 0.0, std::sqrt(0.5)));
  D = register_parameter("D", randn({Cn}, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{.in = Cn, .out = Cn}, gen));
}

namespace {
// What the kernel and the recurrence share, per channel: α = Δ/2 [C, 1], E^{-1} [C, N] and the
// Woodbury denominator s = 1 + α P* E^{-1} P [C, 1].
struct Resolvent {
  Tensor dt, alpha;
  Cx Einv, s;
};
Resolvent resolvent(const S4& m) {
  Resolvent r;
  r.dt = exp(m.log_dt).unsqueeze(-1);
  r.alpha = r.dt * 0.5;
  Cx lam{m.A_re, m.A_im}, P{m.P_re, m.P_im};
  Cx E{1.0 - r.alpha * m.A_re, -(r.alpha * m.A_im)};
  Tensor den = E.re * E.re + E.im * E.im;
  r.Einv = {E.re / den, -E.im / den};
  Cx q = sum(conj(P) * r.Einv * P, {-1});
  r.s = {1.0 + r.alpha.squeeze(-1) * q.re, r.alpha.squeeze(-1) * q.im};
  r.s = unsqueeze(r.s, -1);
  return r;
}
}  // namespace

Tensor S4::kernel(int64_t L) const {
  const int64_t N = options.state;
  const DType dt_type = log_dt.dtype();
  Resolvent r = resolvent(*this);
  Cx lam{A_re, A_im}, P{P_re, P_im}, Bc{B_re, B_im}, C{C_re, C_im};
  // 1. Ā = 2M - I [C, N, N], M = E^{-1} - α E^{-1}P P*E^{-1} / s; then C̃ = C - C Ā^L
  Tensor I = eye(N, dt_type);
  Cx u = r.Einv * P, w = conj(P) * r.Einv;  // [C, N]
  Cx outer = unsqueeze(u, -1) * unsqueeze(w, -2) * r.alpha.unsqueeze(-1);
  Cx M = Cx{I * unsqueeze(r.Einv, -1).re, I * unsqueeze(r.Einv, -1).im} - outer / unsqueeze(r.s, -1);
  Cx Ab{M.re * 2.0 - I, M.im * 2.0};
  Cx row = unsqueeze(C, -2), pw = Ab;  // [C, 1, N], Ā^{2^i}
  for (int64_t e = L;;) {              // C Ā^L by binary powering (the powers commute)
    if (e & 1) row = matmul(row, pw);
    e >>= 1;
    if (!e) break;
    pw = matmul(pw, pw);
  }
  // on the circle |z| = ρ = 2^{-1/L} (see s4.h): C̃ = C (I - ρ^L Ā^L), ρ^L = 1/2
  Cx Ct = C - Cx{row.re.squeeze(-2), row.im.squeeze(-2)} * 0.5;  // [C, N]
  // 2. the generating function at z_k = ρ e^{-2πik/L}: d = (1 - z) - β λ, β = α (1 + z)
  const double rho = std::exp2(-1.0 / double(L));
  std::vector<double> zr(static_cast<size_t>(L)), zi(static_cast<size_t>(L)), cs(size_t(L * L)), sn(size_t(L * L));
  for (int64_t k = 0; k < L; ++k) {
    const double th = 2 * std::numbers::pi * double(k) / double(L);
    zr[size_t(k)] = rho * std::cos(th);
    zi[size_t(k)] = -rho * std::sin(th);
    for (int64_t l = 0; l < L; ++l) {  // angles reduced mod L so that large L stays exact
      const double a = 2 * std::numbers::pi * double((k * l) % L) / double(L);
      const double scale = std::exp2(double(l) / double(L)) / double(L);  // 1/L and ρ^{-ℓ}
      cs[size_t(k * L + l)] = std::cos(a) * scale;
      sn[size_t(k * L + l)] = std::sin(a) * scale;
    }
  }
  Tensor z_re = from_vector(zr, {1, L}).to(dt_type), z_im = from_vector(zi, {1, L}).to(dt_type);
  Cx beta{r.alpha * (1.0 + z_re), r.alpha * z_im};  // [C, L]
  Cx d = Cx{unsqueeze(Cx{1.0 - z_re, -z_im}, -1).re, unsqueeze(Cx{1.0 - z_re, -z_im}, -1).im} -
         unsqueeze(beta, -1) * lam;  // [C, L, N]
  Tensor dd = d.re * d.re + d.im * d.im;
  Cx rd{d.re / dd, -d.im / dd};                                                                  // 1 / d
  auto cauchy = [&](const Cx& x, const Cx& y) { return sum(unsqueeze(x * y, -2) * rd, {-1}); };  // [C, L]
  Cx kCB = cauchy(Ct, Cx{Bc.re.unsqueeze(0), Bc.im.unsqueeze(0)}),
     kCP = cauchy(Ct, Cx{P.re.unsqueeze(0), P.im.unsqueeze(0)});
  Cx kPB = cauchy(conj(P), Bc), kPP = cauchy(conj(P), P);
  Cx Khat = (kCB - beta * kCP * kPB / (Cx{1.0 + (beta * kPP).re, (beta * kPP).im})) * r.dt;
  // 3. the inverse DFT's real part, times ρ^{-ℓ}
  Tensor Cos = from_vector(cs, {L, L}).to(dt_type), Sin = from_vector(sn, {L, L}).to(dt_type);
  return matmul(Khat.re, Cos) - matmul(Khat.im, Sin);  // [C, L]
}

Tensor S4::convolve(const Tensor& u) const {
  return long_conv(u.transpose(1, 2), kernel(u.size(1)), D).transpose(1, 2);
}

Tensor S4::recur(const Tensor& u, Tensor* x) const {
  const int64_t B = u.size(0), T = u.size(1), Cn = options.dim, N = options.state;
  Resolvent r = resolvent(*this);
  Cx lam{A_re, A_im}, P{P_re, P_im}, Bc{B_re, B_im}, C{C_re, C_im};
  Cx EP = r.Einv * P;  // [C, N]
  Tensor h0 = x && x->defined() ? *x : zeros({B, Cn, N, 2}, u.dtype());
  Cx h{h0.select(-1, 0), h0.select(-1, 1)};
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < T; ++t) {
    Tensor ut = u.select(1, t);  // [B, C]
    Cx Px = sum(conj(P) * h, {-1});
    Cx v = h + (lam * h - P * unsqueeze(Px, -1)) * r.alpha + Bc * (ut.unsqueeze(-1) * r.dt);
    Cx Ev = r.Einv * v;
    Cx q = unsqueeze(sum(conj(P) * Ev, {-1}), -1);  // P* E^{-1} v [B, C, 1]
    h = Ev - EP * (q / r.s) * r.alpha;
    ys.push_back(sum(C.re * h.re - C.im * h.im, {-1}) + ut * D);
  }
  if (x) *x = stack({h.re, h.im}, -1);
  return stack(ys, 1);
}

std::unique_ptr<MixerState> S4::make_state(int64_t batch, int64_t, DType dtype) const {
  return state_with(zeros({batch, options.dim, options.state, 2}, dtype));
}

std::string S4::describe() const {
  return options.name + "(dim " + std::to_string(options.dim) + ", state " + std::to_string(options.state) + ", " +
         (options.fout ? "HiPPO-FouT" : "HiPPO-LegS") + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_s4(nn::Registry& r) {
  r.add({.id = "s4",
         .summary = "S4: NPLR HiPPO-LegS SSM, kernel by Cauchy sums + Woodbury at roots of unity, FFT conv, recurrence",
         .keys = {nn::kSsmState, nn::kSsmDtMin, nn::kSsmDtMax, nn::kS4Measure},
         .test_config = R"({"mixer": "s4", "ssm_state": 8, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5})",
         .example = R"({"dim": 256, "mixer": "s4", "ssm_state": 64, "norm": "layernorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::S4>(nn::s4_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
