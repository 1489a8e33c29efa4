// Proofs of the long-convolution mixers (nn/ssm/s4d, nn/ssm/hyena), in f64:
//   - s4d: the kernel applied by the FFT long convolution equals the recurrent complex scan
//     (outputs and the gradients of the input and of every SSM parameter), for S4D-Lin and
//     S4D-Inv; the Vandermonde kernel equals the recurrence's impulse response; step decode
//     (the recurrent state) equals the full forward.
//   - hyena: the FFT long convolutions equal the direct causal sums (the whole operator run
//     both ways, outputs and gradients); causality (changing u after t leaves y up to t);
//     decode from the kept history equals the full forward.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/ssm/hyena.h"
#include "nn/ssm/s4d.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "tests/zoo/ssm_grads.h"

namespace tz::testing {
namespace {

double s4d_conv_vs_scan(const std::string& init) {
  Generator gen(5);
  nn::Config c = nn::Config::parse(R"({"ssm_state": 6, "s4d_init": ")" + init + R"("})");
  nn::S4d m(nn::s4d_options({.dim = 4, .heads = 1, .context = 32, .depth = 1}, c), gen);
  m.to(DType::f64);
  Tensor u = randn({2, 37, 4}, gen, DType::f64).requires_grad_();
  Tensor w = randn({2, 37, 4}, gen, DType::f64);
  std::vector<Tensor> a = ssm_grads(m, u, w, true), b = ssm_grads(m, u, w, false);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor ", i);
    CHECK(rel_rms(a[i], b[i]) <= 1e-10);
    worst = std::max(worst, rel_rms(a[i], b[i]));
  }
  return worst;
}

// The recurrence's response to a unit impulse at t = 0 is K_t + D [t = 0].
double s4d_kernel_vs_impulse() {
  Generator gen(6);
  nn::S4d m(
      nn::s4d_options({.dim = 3, .heads = 1, .context = 32, .depth = 1}, nn::Config::parse(R"({"ssm_state": 8})")),
      gen);
  m.to(DType::f64);
  NoGradGuard no_grad;
  const int64_t L = 50;
  std::vector<double> d(static_cast<size_t>(L * 3), 0.0);
  d[0] = d[1] = d[2] = 1.0;
  Tensor delta = from_vector(d, {1, L, 3});
  Tensor impulse =
      m.recur(delta).select(0, 0).transpose(0, 1) - delta.select(0, 0).transpose(0, 1) * m.ssm->D.unsqueeze(-1);
  return rel_rms(m.kernel(L), impulse.contiguous());
}
// Hyena's output and the gradients of x and every parameter, its long convs by FFT or direct.
std::vector<Tensor> hyena_run(nn::Hyena& m, const Tensor& x, const Tensor& w, bool direct) {
  m.options.direct = direct;
  m.zero_grad();
  x.zero_grad();
  Tensor y = m.forward(x, {});
  sum(y * w).backward();
  std::vector<Tensor> out{y.detach().contiguous(), x.grad().clone()};
  for (const auto& [name, p] : m.named_parameters()) {
    INFO("parameter ", name);
    REQUIRE(p.grad().defined());
    out.push_back(p.grad().clone());
  }
  return out;
}
}  // namespace

TZ_PROOF(s4d, "Vandermonde kernel by FFT long conv == recurrent scan (outputs, grads), decode == forward") {
  const double lin = s4d_conv_vs_scan("lin"), inv = s4d_conv_vs_scan("inv");
  const double impulse = s4d_kernel_vs_impulse();
  CHECK(impulse <= 1e-10);
  const double step = lm_step_vs_forward(R"({"mixer": "s4d", "ssm_state": 4})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("conv vs scan (rel rms): S4D-Lin ", lin, ", S4D-Inv ", inv, "; kernel vs impulse response ", impulse,
          "; step vs forward ", step);
  TZ_PROOF_NUMBER("conv vs scan (rel rms)", std::max(lin, inv));
}

TZ_PROOF(hyena, "FFT long convs == direct causal sums (outputs, grads), causal, decode from the history == forward") {
  Generator gen(9);
  nn::Config c = nn::Config::parse(R"({"hyena_order": 3, "hyena_filter_dim": 8})");
  nn::Hyena m(nn::hyena_options({.dim = 4, .heads = 1, .context = 32, .depth = 1}, c), gen);
  m.to(DType::f64);
  Tensor x = randn({2, 29, 4}, gen, DType::f64).requires_grad_();
  Tensor w = randn({2, 29, 4}, gen, DType::f64);
  std::vector<Tensor> a = hyena_run(m, x, w, false), b = hyena_run(m, x, w, true);
  double fft_vs_direct = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor ", i);
    CHECK(rel_rms(a[i], b[i]) <= 1e-10);
    fft_vs_direct = std::max(fft_vs_direct, rel_rms(a[i], b[i]));
  }
  // causality: changing x after t leaves y up to t, and moves y after it
  NoGradGuard no_grad;
  m.options.direct = false;
  Tensor y = m.forward(x.detach(), {});
  double leak = 0;
  for (int64_t t : {0, 14, 27}) {
    Tensor x2 = x.detach().clone();
    Tensor tail = x2.narrow(1, t + 1, 29 - t - 1);
    core::copy_(tail, randn(tail.shape(), gen, DType::f64));
    Tensor y2 = m.forward(x2, {});
    leak = std::max(leak, max_abs_diff(y2.narrow(1, 0, t + 1), y.narrow(1, 0, t + 1)));
    CHECK(max_abs_diff(y2.narrow(1, t + 1, 1), y.narrow(1, t + 1, 1)) > 1e-6);
  }
  CHECK(leak <= 1e-12);
  const double step = lm_step_vs_forward(R"({"mixer": "hyena", "hyena_filter_dim": 8})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("FFT vs direct (rel rms) ", fft_vs_direct, "; causal leak ", leak, "; step vs forward ", step);
  TZ_PROOF_NUMBER("FFT vs direct (rel rms)", fft_vs_direct);
}

}  // namespace tz::testing
