// Proofs of the Hawk recurrent block (nn/linear_rnn/rglru.h):
//   - the chunked scan, fed by the block's own gates, equals the sequential loop of plain ops
//     (f64: the states and the gradients of x and every parameter before the output);
//   - step decoding (conv state + h) equals the full forward;
//   - bounded input gives a bounded state: with |i_t v_t| <= M and a_t <= a_max < 1,
//     |h_t| <= M sqrt(1 - a^2) / (1 - a) <= M sqrt((1 + a_max) / (1 - a_max)) for every t,
//     checked over 4000 steps of inputs in [-1, 1], and the state does not grow with t.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/linear_rnn/rglru.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

namespace tz::testing {
namespace {
double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

double rglru_scan_vs_loop() {
  Generator gen(11);
  nn::Rglru m(nn::rglru_options({.dim = 8, .heads = 1, .context = 64, .depth = 1}, nn::Config::parse("{}")), gen);
  m.to(DType::f64);
  Tensor x = randn({2, 37, 8}, gen, DType::f64).requires_grad_();
  Tensor w = randn({2, 37, 8}, gen, DType::f64);
  auto run = [&](bool fast) {
    m.zero_grad();
    x.zero_grad();
    nn::Rglru::ScanInputs in = m.scan_inputs(x, nullptr);
    Tensor h = fast ? scan(in.a, in.b, Tensor(), {.chunk = 8}) : scan_composite(in.a, in.b);
    sum(h * w).backward();
    std::vector<Tensor> out{h.detach(), x.grad().clone()};
    for (const auto& [name, p] : m.named_parameters())
      if (name.rfind("out_proj", 0) != 0 && name.rfind("gate_proj", 0) != 0) out.push_back(p.grad().clone());
    return out;
  };
  std::vector<Tensor> a = run(true), b = run(false);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, max_abs_diff(a[i], b[i]));
  return worst;
}
}  // namespace

TZ_PROOF(rglru_hawk, "chunked scan == sequential, decode == full forward, bounded state for bounded input") {
  const double scan_err = rglru_scan_vs_loop();
  CHECK(scan_err <= 1e-10);
  const double step_err = lm_step_vs_forward(R"({"mixer": "rglru_hawk", "norm": "rmsnorm"})", 11);
  CHECK(step_err <= 1e-9);

  Generator gen(12);
  nn::Rglru m(nn::rglru_options({.dim = 16, .heads = 1, .context = 4096, .depth = 1}, nn::Config::parse("{}")), gen);
  m.to(DType::f64);
  NoGradGuard no_grad;
  Tensor x = rand({1, 4000, 16}, gen, DType::f64, -1.0, 1.0);
  nn::Rglru::ScanInputs in = m.scan_inputs(x, nullptr);
  Tensor h = scan(in.a, in.b);
  const double a_max = max_abs(in.a);
  Tensor drive = in.b / sqrt(clamp(1.0 - in.a * in.a, 1e-6, 1.0));  // i_t v_t
  const double M = max_abs(drive), bound = M * std::sqrt((1 + a_max) / (1 - a_max));
  const double first = max_abs(h.narrow(1, 0, 2000)), second = max_abs(h.narrow(1, 2000, 2000));
  MESSAGE("scan vs loop ", scan_err, ", step vs forward ", step_err, "; a_max ", a_max, ", M ", M, ", max |h| ",
          std::max(first, second), " <= bound ", bound, "; max |h| over steps 0-1999 ", first, ", 2000-3999 ", second);
  CHECK(a_max < 1);
  CHECK(std::max(first, second) <= bound);
  CHECK(second <= 1.5 * first);  // no growth over time
  TZ_PROOF_NUMBER("max |h| / bound", std::max(first, second) / bound);
}

}  // namespace tz::testing
