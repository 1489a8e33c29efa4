// Proofs of the HiPPO / S4 family (nn/ssm/dss, s4, hippo, lssl, httyh), in f64. Every kernel
// generator is checked against Krylov powering K_l = C Ā^l B̄ of its discretised matrix
// (core/kernels/ssm_kernels.h: the reference), the convolution against the recurrence (outputs
// and gradients), and decoding token by token against the full forward; then each paper's own
// property (see each TZ_PROOF).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/ssm_kernels.h"
#include "core/random.h"
#include "nn/ssm/dss.h"
#include "nn/ssm/hippo.h"
#include "nn/ssm/httyh.h"
#include "nn/ssm/lssl.h"
#include "nn/ssm/s4.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "tests/zoo/ssm_grads.h"

namespace tz::testing {
namespace {
using cplx = std::complex<double>;

// The largest relative RMS between the convolution and the recurrence over y and all gradients.
template <class M>
double conv_vs_recur(M& m, int64_t B, int64_t T, uint64_t seed) {
  Generator gen(seed);
  Tensor u = randn({B, T, m.options.dim}, gen, DType::f64).requires_grad_();
  Tensor w = randn({B, T, m.options.dim}, gen, DType::f64);
  std::vector<Tensor> a = ssm_grads(m, u, w, true, false), b = ssm_grads(m, u, w, false, false);
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor ", i);
    CHECK(rel_rms(a[i], b[i]) <= 1e-10);
    worst = std::max(worst, rel_rms(a[i], b[i]));
  }
  return worst;
}

// A complex system (A [N, N], B, C [N]) as a real one of size 2N: x = (Re h, Im h),
// A -> [[Re A, -Im A], [Im A, Re A]], B -> (Re B, Im B), y = Re(C h) -> (Re C, -Im C).
struct RealSsm {
  int64_t N;
  std::vector<double> A, B, C;
};
RealSsm realify(const std::vector<cplx>& A, const std::vector<cplx>& B, const std::vector<cplx>& C) {
  const int64_t n = int64_t(B.size()), N = 2 * n;
  RealSsm r{.N = N,
            .A = std::vector<double>(static_cast<size_t>(N * N)),
            .B = std::vector<double>(static_cast<size_t>(N)),
            .C = std::vector<double>(static_cast<size_t>(N))};
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const cplx a = A[size_t(i * n + j)];
      r.A[size_t(i * N + j)] = r.A[size_t((i + n) * N + j + n)] = a.real();
      r.A[size_t(i * N + j + n)] = -a.imag();
      r.A[size_t((i + n) * N + j)] = a.imag();
    }
    r.B[size_t(i)] = B[size_t(i)].real();
    r.B[size_t(i + n)] = B[size_t(i)].imag();
    r.C[size_t(i)] = C[size_t(i)].real();
    r.C[size_t(i + n)] = -C[size_t(i)].imag();
  }
  return r;
}
// K_l = C Ā^l B̄ with Ā, B̄ from the given discretisation of the real system.
std::vector<double> krylov(const RealSsm& s, double dt, int64_t L, bool zoh) {
  std::vector<double> Ab(size_t(s.N * s.N)), Bb(size_t(s.N)), K(static_cast<size_t>(L));
  if (zoh)
    kernels::discretise_zoh(Ab.data(), Bb.data(), s.A.data(), s.B.data(), s.N, dt);
  else
    kernels::discretise_bilinear(Ab.data(), Bb.data(), s.A.data(), s.B.data(), s.N, dt);
  kernels::krylov_kernel(K.data(), Ab.data(), Bb.data(), s.C.data(), s.N, L);
  return K;
}
double rel_rms(const std::vector<double>& a, const Tensor& b) {
  return tz::testing::rel_rms(from_vector(a, {int64_t(a.size())}), b.contiguous());
}
cplx par(const Tensor& re, const Tensor& im, std::initializer_list<int64_t> i) { return {re.at(i), im.at(i)}; }

nn::ModelDims tiny_dims(int64_t dim) { return {.dim = dim, .heads = 1, .context = 48, .depth = 1}; }
}  // namespace

// ---- DSS ---------------------------------------------------------------------------------------
namespace {
// DSS's kernel per channel against Krylov powering of ZOH(diag λ, B = w [/ (e^{λΔL} - 1)]), C = 1.
double dss_vs_krylov(nn::Dss& m, int64_t L) {
  NoGradGuard no_grad;
  Tensor K = m.kernel(L);
  const int64_t P = m.options.state / 2;
  double worst = 0;
  for (int64_t c = 0; c < m.options.dim; ++c) {
    const double dt = std::exp(m.log_dt.at({c}));
    std::vector<cplx> A(size_t(P * P), 0.0), B(static_cast<size_t>(P)), C(size_t(P), 1.0);
    for (int64_t n = 0; n < P; ++n) {
      const cplx lam(-std::exp(m.A_log_re.at({n})), m.A_im.at({n}));
      A[size_t(n * P + n)] = lam;
      B[size_t(n)] = par(m.W_re, m.W_im, {c, n});
      if (m.options.softmax) B[size_t(n)] /= std::exp(lam * dt * double(m.options.length)) - 1.0;
    }
    worst = std::max(worst, rel_rms(krylov(realify(A, B, C), dt, L, true), K.select(0, c)));
  }
  return worst;
}
}  // namespace

TZ_PROOF(dss,
         "exp and softmax kernels == Krylov powering of ZOH(diag λ), FFT conv == recurrence (outputs, grads) "
         "and == direct conv, decode == forward, λ from HiPPO-LegS") {
  Generator gen(3);
  double krylov_err = 0, conv_err = 0;
  for (const std::string kind : {"exp", "softmax"}) {
    CAPTURE(kind);
    nn::Config c = nn::Config::parse(
        std::string(R"({"ssm_state": 8, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5, "dss_kernel": ")") + kind + "\"}");
    nn::Dss m(nn::dss_options(tiny_dims(3), c), gen);
    m.to(DType::f64);
    const double k = dss_vs_krylov(m, 40), v = conv_vs_recur(m, 2, 33, 4);
    CHECK(k <= 1e-10);
    krylov_err = std::max(krylov_err, k);
    conv_err = std::max(conv_err, v);
    MESSAGE("DSS_", kind, ": kernel vs Krylov ", k, ", conv vs recurrence (y and grads) ", v);
  }
  // the FFT long convolution against the direct causal sums, with the DSS kernel
  double direct = 0;
  {
    nn::Dss m(nn::dss_options(tiny_dims(3), nn::Config::parse(R"({"ssm_state": 8, "ssm_dt_max": 0.5})")), gen);
    m.to(DType::f64);
    NoGradGuard no_grad;
    Tensor u = randn({2, 3, 50}, gen, DType::f64), K = m.kernel(50);
    direct = rel_rms(long_conv(u, K, m.D), long_conv(u, K, m.D, {.reference = true}));
    CHECK(direct <= 1e-12);
  }
  // the init: λ are HiPPO-LegS's normal eigenvalues -1/2 + iω (ω > 0, from the NPLR form)
  nn::Dss m(nn::dss_options(tiny_dims(2), nn::Config::parse(R"({"ssm_state": 8})")), gen);
  kernels::Nplr r = kernels::nplr(kernels::hippo_legs(8), kernels::legs_low_rank(8));
  std::vector<double> omega;
  for (const cplx& l : r.lambda)
    if (l.imag() > 0) omega.push_back(l.imag());
  REQUIRE(omega.size() == 4);
  for (int64_t n = 0; n < 4; ++n) {
    CHECK(-std::exp(m.A_log_re.at({n})) == doctest::Approx(-0.5).epsilon(1e-6));
    CHECK(m.A_im.at({n}) == doctest::Approx(omega[size_t(n)]).epsilon(1e-6));
  }
  const double step = std::max(lm_step_vs_forward(R"({"mixer": "dss", "ssm_state": 8})", 12),
                               lm_step_vs_forward(R"({"mixer": "dss", "ssm_state": 8, "dss_kernel": "softmax"})", 12));
  CHECK(step <= 1e-9);
  MESSAGE("DSS: Im λ(N = 8) = ", omega[0], ", ", omega[1], ", ", omega[2], ", ", omega[3], "; FFT vs direct conv ",
          direct, "; step vs forward ", step);
  TZ_PROOF_NUMBER("kernel vs Krylov (rel rms)", krylov_err);
}

// ---- LSSL --------------------------------------------------------------------------------------
namespace {
// The SSM's output (y without the block's GELU and out_proj) for the signal f sampled with step Δ.
Tensor lssl_output(double dt, int64_t T, const nn::Lssl& like) {
  Generator gen(1);
  nn::Lssl m(nn::lssl_options(
                 tiny_dims(like.options.dim),
                 nn::Config::parse(R"({"ssm_state": )" + std::to_string(like.options.state) + R"(, "ssm_dt_min": )" +
                                   std::to_string(dt) + R"(, "ssm_dt_max": )" + std::to_string(dt) + "}")),
             gen);
  m.to(DType::f64);
  core::copy_(m.C, like.C);
  core::copy_(m.D, like.D);
  CHECK(std::exp(m.log_dt.at({0})) == doctest::Approx(dt).epsilon(1e-12));
  std::vector<double> u(static_cast<size_t>(T * m.options.dim));
  for (int64_t k = 0; k < T; ++k)
    for (int64_t c = 0; c < m.options.dim; ++c) {
      const double t = double(k) * dt;
      u[size_t(k * m.options.dim + c)] = std::sin(2 * std::numbers::pi * t * double(c + 1)) + 0.5 * std::cos(3 * t);
    }
  NoGradGuard no_grad;
  return m.convolve(from_vector(u, {1, T, m.options.dim}));
}
}  // namespace

TZ_PROOF(lssl,
         "Krylov kernel by FFT conv == dense recurrence (outputs, grads), decode == forward, halving Δ on "
         "the 2x upsampled input gives the same output up to O(Δ) discretisation error") {
  Generator gen(7);
  nn::Lssl m(
      nn::lssl_options(tiny_dims(3), nn::Config::parse(R"({"ssm_state": 8, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5})")),
      gen);
  m.to(DType::f64);
  const double conv = conv_vs_recur(m, 2, 37, 8);
  // the kernel against the recurrence's impulse response
  NoGradGuard no_grad;
  const int64_t L = 40;
  Tensor delta = zeros({1, L, 3}, DType::f64);
  for (int64_t c = 0; c < 3; ++c) delta.set({0, 0, c}, 1.0);
  Tensor impulse = (m.recur(delta).select(0, 0) - delta.select(0, 0) * m.D).transpose(0, 1).contiguous();
  const double imp = rel_rms(m.kernel(L), impulse);
  CHECK(imp <= 1e-12);
  // continuous time: the same signal at step Δ and Δ / 2 (2x the samples); compare y at the
  // shared times. The bilinear step takes u_k at the end of its interval (B̄ u_k, not the
  // trapezoid (u_k + u_{k-1}) / 2), so the difference is first order in Δ: it halves when Δ does.
  const int64_t T = 64;
  const double dt = 0.02;
  Tensor y1 = lssl_output(dt, T, m), y2 = lssl_output(dt / 2, 2 * T, m), y4 = lssl_output(dt / 4, 4 * T, m);
  Tensor y8 = lssl_output(dt / 8, 8 * T, m);
  Tensor s2 = y2.slice(1, 0, 2 * T, 2), s4 = y4.slice(1, 0, 4 * T, 4), s8 = y8.slice(1, 0, 8 * T, 8);
  const double e1 = rel_rms(y1, s2.contiguous()), e2 = rel_rms(s2.contiguous(), s4.contiguous()),
               e3 = rel_rms(s4.contiguous(), s8.contiguous());
  CHECK(e1 <= 0.05);
  CHECK(e2 / e3 >= 1.8);
  CHECK(e1 / e2 >= 1.8);
  const double step = lm_step_vs_forward(R"({"mixer": "lssl", "ssm_state": 6})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("LSSL: conv vs recurrence ", conv, "; kernel vs impulse response ", imp, "; step vs forward ", step,
          "; y(Δ) vs y(Δ/2) on 2x upsampled input (rel rms): Δ = 0.02: ", e1, ", 0.01: ", e2, ", 0.005: ", e3);
  TZ_PROOF_NUMBER("y(Δ) vs y(Δ/2), Δ = 0.02 (rel rms)", e1);
}

// ---- S4 ----------------------------------------------------------------------------------------
namespace {
// The layer's kernel (Cauchy + Woodbury) against Krylov powering of the bilinear-discretised
// dense system. dense_hippo: at init, the real dense HiPPO matrix with C = Re(C V*) (the NPLR
// form seen back in the HiPPO basis); otherwise the complex A = Λ - P P* of the parameters.
double s4_vs_krylov(const nn::S4& m, int64_t L, bool dense_hippo) {
  NoGradGuard no_grad;
  Tensor K = m.kernel(L);
  const int64_t N = m.options.state;
  const kernels::DenseSsm hippo = m.options.fout ? kernels::hippo_fout(N) : kernels::hippo_legs(N);
  const kernels::Nplr r = m.options.fout ? kernels::nplr(hippo, kernels::fout_low_rank(N))
                                         : kernels::nplr(hippo, kernels::legs_low_rank(N));
  double worst = 0;
  for (int64_t c = 0; c < m.options.dim; ++c) {
    const double dt = std::exp(m.log_dt.at({c}));
    RealSsm s;
    if (dense_hippo) {
      s = {.N = N, .A = hippo.A, .B = hippo.B, .C = std::vector<double>(static_cast<size_t>(N))};
      for (int64_t j = 0; j < N; ++j) {
        cplx cv = 0;
        for (int64_t n = 0; n < N; ++n) cv += par(m.C_re, m.C_im, {c, n}) * std::conj(r.V[size_t(j * N + n)]);
        s.C[size_t(j)] = cv.real();
      }
    } else {
      std::vector<cplx> A(static_cast<size_t>(N * N)), B(static_cast<size_t>(N)), C(static_cast<size_t>(N));
      for (int64_t i = 0; i < N; ++i) {
        B[size_t(i)] = par(m.B_re, m.B_im, {i});
        C[size_t(i)] = par(m.C_re, m.C_im, {c, i});
        for (int64_t j = 0; j < N; ++j)
          A[size_t(i * N + j)] = (i == j ? par(m.A_re, m.A_im, {i}) : 0.0) -
                                 par(m.P_re, m.P_im, {i}) * std::conj(par(m.P_re, m.P_im, {j}));
      }
      s = realify(A, B, C);
    }
    worst = std::max(worst, rel_rms(krylov(s, dt, L, false), K.select(0, c)));
  }
  return worst;
}
}  // namespace

namespace {
// Parameters are made in f32 (Λ, P, B rounded to ~6e-8); in f64 the proofs give them back the
// NPLR values of the HiPPO matrix exactly.
void restore_f64_init(nn::S4& m) {
  const int64_t N = m.options.state;
  const kernels::Nplr r = m.options.fout ? kernels::nplr(kernels::hippo_fout(N), kernels::fout_low_rank(N))
                                         : kernels::nplr(kernels::hippo_legs(N), kernels::legs_low_rank(N));
  for (int64_t n = 0; n < N; ++n) {
    m.A_re.set({n}, r.lambda[size_t(n)].real());
    m.A_im.set({n}, r.lambda[size_t(n)].imag());
    m.P_re.set({n}, r.P[size_t(n)].real());
    m.P_im.set({n}, r.P[size_t(n)].imag());
    m.B_re.set({n}, r.B[size_t(n)].real());
    m.B_im.set({n}, r.B[size_t(n)].imag());
  }
}
}  // namespace

TZ_PROOF(s4,
         "NPLR form reproduces HiPPO-LegS, Cauchy + Woodbury kernel == Krylov powering of the dense bilinear "
         "matrix, FFT conv == O(N) recurrence (outputs, grads), decode == forward") {
  double nplr_err = 0;  // V (Λ - P̃P̃*) V* against the dense LegS matrix
  for (int64_t N : {8, 16, 32, 64}) {
    const kernels::DenseSsm legs = kernels::hippo_legs(N);
    const kernels::Nplr r = kernels::nplr(legs, kernels::legs_low_rank(N));
    double err = 0, scale = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j) {
        cplx a = 0;
        for (int64_t n = 0; n < N; ++n)
          a += r.V[size_t(i * N + n)] * (r.lambda[size_t(n)] * std::conj(r.V[size_t(j * N + n)]));
        for (int64_t n = 0; n < N; ++n)
          for (int64_t q = 0; q < N; ++q)
            a -=
                r.V[size_t(i * N + n)] * r.P[size_t(n)] * std::conj(r.P[size_t(q)]) * std::conj(r.V[size_t(j * N + q)]);
        err = std::max(err, std::abs(a - legs.A[size_t(i * N + j)]));
        scale = std::max(scale, std::abs(legs.A[size_t(i * N + j)]));
      }
    CHECK(err / scale <= 1e-12);
    nplr_err = std::max(nplr_err, err / scale);
  }
  Generator gen(11);
  nn::Config c = nn::Config::parse(R"({"ssm_state": 8, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5})");
  nn::S4 m(nn::s4_options(tiny_dims(3), c), gen);
  m.to(DType::f64);
  restore_f64_init(m);
  double kry = 0;
  for (int64_t L : {1, 7, 32, 45}) {
    CAPTURE(L);
    const double a = s4_vs_krylov(m, L, true), b = s4_vs_krylov(m, L, false);
    CHECK(a <= 1e-10);
    CHECK(b <= 1e-10);
    kry = std::max({kry, a, b});
  }
  // away from the init (every parameter moved), the kernel still equals the powering of Λ - P P*
  {
    NoGradGuard no_grad;
    for (const auto& [name, p] : m.named_parameters())
      if (name.rfind("out_proj", 0) != 0) core::copy_(p, p + randn(p.shape(), gen, DType::f64) * 0.1);
  }
  const double moved = s4_vs_krylov(m, 40, false);
  CHECK(moved <= 1e-10);
  const double conv = conv_vs_recur(m, 2, 29, 12);
  const double step = lm_step_vs_forward(R"({"mixer": "s4", "ssm_state": 6})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("S4: NPLR vs dense LegS (N 8..64, rel max) ", nplr_err, "; kernel vs Krylov (L 1, 7, 32, 45) ", kry,
          ", after moving the parameters ", moved, "; conv vs recurrence ", conv, "; step vs forward ", step);
  TZ_PROOF_NUMBER("kernel vs Krylov powering (rel rms)", std::max(kry, moved));
}

// ---- HTTYH (S4-FouT) -----------------------------------------------------------------------------
namespace {
// The sliding Fourier basis q_n(t) on the window [0, 1), 0 after.
double fourier_basis(int64_t n, double t) {
  if (t < 0 || t >= 1) return 0;
  if (n == 0) return 1;
  const double k = double((n + 1) / 2), a = 2 * std::numbers::pi * k * t;
  return std::sqrt(2.0) * (n % 2 == 1 ? std::cos(a) : std::sin(a));
}
struct FoutFit {
  double window = 0, after = 0;  // max |K_n(t) - q_n(t)| over n < 5, t ∈ [0.1, 0.9] and t ∈ [1.1, 2)
};
// The continuous impulse response e^{tA}B of HiPPO-FouT (N states) sampled every 1/1000.
FoutFit fout_fit(int64_t N) {
  const kernels::DenseSsm s = kernels::hippo_fout(N);
  const int64_t steps = 2000;
  std::vector<double> M(s.A), E(static_cast<size_t>(N * N)), x(s.B), next(static_cast<size_t>(N));
  for (double& v : M) v /= 1000.0;
  kernels::expm_dense(E.data(), M.data(), N);
  FoutFit f;
  for (int64_t i = 0; i < steps; ++i) {
    const double t = double(i) / 1000.0;
    for (int64_t n = 0; n < 5; ++n) {
      const double e = std::abs(x[size_t(n)] - fourier_basis(n, t));
      if (t >= 0.1 && t <= 0.9) f.window = std::max(f.window, e);
      if (t >= 1.1) f.after = std::max(f.after, e);
    }
    for (int64_t r = 0; r < N; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < N; ++c) acc += E[size_t(r * N + c)] * x[size_t(c)];
      next[size_t(r)] = acc;
    }
    x = next;
  }
  return f;
}
}  // namespace

TZ_PROOF(httyh_s4,
         "FouT kernel == the sliding Fourier basis on its window (error falling with N), S4-FouT "
         "kernel == Krylov of dense FouT, conv == recurrent, decode == forward, log-uniform Δ") {
  // 1. the continuous FouT kernel against the sliding Fourier basis
  double prev = 1e9, window = 0, after = 0;
  std::string table = "N | max |e^{tA}B - q(t)|, t in [0.1, 0.9] | after the window, t >= 1.1\n";
  for (int64_t N : {9, 17, 33, 65, 129}) {
    const FoutFit f = fout_fit(N);
    table += std::to_string(N) + " | " + std::to_string(f.window) + " | " + std::to_string(f.after) + "\n";
    CHECK(f.window < prev);
    prev = window = f.window;
    after = f.after;
  }
  CHECK(window <= 0.03);
  CHECK(after <= 0.2);
  MESSAGE("FouT kernel vs sliding Fourier basis (first 5 functions):\n", table);
  // 2. the layer (NPLR FouT) against Krylov powering of the dense discretised FouT matrix
  Generator gen(13);
  nn::Config c = nn::Config::parse(R"({"ssm_state": 9, "ssm_dt_min": 0.01, "ssm_dt_max": 0.2})");
  nn::S4 m(nn::httyh_options(tiny_dims(3), c), gen);
  REQUIRE(m.options.fout);
  m.to(DType::f64);
  restore_f64_init(m);
  const double kry = std::max(s4_vs_krylov(m, 40, true), s4_vs_krylov(m, 40, false));
  CHECK(kry <= 1e-9);
  const double conv = conv_vs_recur(m, 2, 31, 14);
  const double step = lm_step_vs_forward(R"({"mixer": "httyh_s4", "ssm_state": 7})", 12);
  CHECK(step <= 1e-9);
  // 3. the timescale init: log Δ uniform on [log dt_min, log dt_max] (Kolmogorov-Smirnov distance;
  // the 1% critical value for 2000 draws is 1.63 / √2000 = 0.036; uniform Δ would give ~0.5)
  nn::S4 wide(nn::httyh_options(tiny_dims(2000), nn::Config::parse(R"({"ssm_state": 3})")), gen);
  std::vector<double> ld = wide.log_dt.to_vector<double>();
  std::sort(ld.begin(), ld.end());
  const double lo = std::log(0.001), hi = std::log(0.1);
  double ks = 0;
  for (size_t i = 0; i < ld.size(); ++i) {
    const double F = (ld[i] - lo) / (hi - lo), n = double(ld.size());
    ks = std::max({ks, std::abs(F - double(i) / n), std::abs(F - double(i + 1) / n)});
  }
  CHECK(ld.front() >= lo - 1e-6);
  CHECK(ld.back() <= hi + 1e-6);
  CHECK(ks <= 0.036);
  MESSAGE("S4-FouT: kernel vs Krylov ", kry, "; conv vs recurrence ", conv, "; step vs forward ", step,
          "; log-uniform Δ: KS distance ", ks, " (2000 channels)");
  TZ_PROOF_NUMBER("FouT kernel vs sliding Fourier basis on the window, N = 129", window);
}

// ---- HiPPO ---------------------------------------------------------------------------------------
namespace {
// The memory of f(s) = sin 6s + cos(15 s²) / 2 sampled at s = k / T, k = 1..T, read back at the
// end as f(s) ≈ Σ_n c_n √(2n+1) P_n(2s - 1): the RMS error over the samples.
double hippo_reconstruction(int64_t N, int64_t T) {
  Generator gen(1);
  nn::Hippo m(nn::hippo_options(tiny_dims(1), nn::Config::parse(R"({"ssm_state": )" + std::to_string(N) + "}")), gen);
  m.to(DType::f64);
  auto f = [](double s) { return std::sin(6 * s) + 0.5 * std::cos(15 * s * s); };
  std::vector<double> u(static_cast<size_t>(T));
  for (int64_t k = 1; k <= T; ++k) u[size_t(k - 1)] = f(double(k) / double(T));
  NoGradGuard no_grad;
  Tensor c;
  m.recur(from_vector(u, {1, T, 1}), &c);
  std::vector<double> coef = c.to_vector<double>(), p(static_cast<size_t>(N));
  double se = 0;
  for (int64_t k = 1; k <= T; ++k) {
    const double s = double(k) / double(T);
    kernels::legendre(p.data(), 2 * s - 1, N);
    double rec = 0;
    for (int64_t n = 0; n < N; ++n) rec += coef[size_t(n)] * std::sqrt(2.0 * double(n) + 1) * p[size_t(n)];
    se += (rec - f(s)) * (rec - f(s));
  }
  return std::sqrt(se / double(T));
}
}  // namespace

TZ_PROOF(hippo,
         "history reconstructed from c(t) by Legendre polynomials, error falling with N, materialised "
         "transfer == recurrence (outputs, grads), decode == forward") {
  std::string table = "N | rms error of the reconstructed history (T = 2000)\n";
  double prev = 1e9;
  for (int64_t N : {2, 4, 8, 16}) {
    const double e = hippo_reconstruction(N, 2000);
    table += std::to_string(N) + " | " + std::to_string(e) + "\n";
    CHECK(e < prev);
    prev = e;
  }
  CHECK(prev <= 0.01);
  MESSAGE("HiPPO-LegS memory, f(s) = sin 6s + cos(15 s^2) / 2 on [0, 1]:\n", table);
  Generator gen(17);
  nn::Hippo m(nn::hippo_options(tiny_dims(3), nn::Config::parse(R"({"ssm_state": 6})")), gen);
  m.to(DType::f64);
  const double conv = conv_vs_recur(m, 2, 23, 18);
  // a recurrence continued from a split point equals the whole (the position is part of the state)
  NoGradGuard no_grad;
  Tensor u = randn({2, 23, 3}, gen, DType::f64), c;
  Tensor whole = m.recur(u);
  Tensor first = m.recur(u.narrow(1, 0, 9), &c), second = m.recur(u.narrow(1, 9, 14), &c, 9);
  const double split = rel_rms(cat({first, second}, 1), whole);
  CHECK(split <= 1e-12);
  const double step = lm_step_vs_forward(R"({"mixer": "hippo", "ssm_state": 6})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("HiPPO: materialised vs recurrence ", conv, "; split at 9 vs whole ", split, "; step vs forward ", step);
  TZ_PROOF_NUMBER("reconstruction rms error, N = 16", prev);
}

}  // namespace tz::testing
