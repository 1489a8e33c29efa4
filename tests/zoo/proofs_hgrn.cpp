// Proofs of HGRN (nn/linear_rnn/hgrn.h):
//   - the chunked complex scan, fed by the layer's own gates, equals the sequential loop of
//     plain ops (f64: the states and the gradients of x and of every parameter before the norm);
//   - the forget gate is never below the layer's bound gamma_l = l / L, in every layer of a
//     depth-4 stack, also for inputs scaled by 1000 (sigmoid saturated at 0), where it reaches it;
//   - step decoding equals the full forward.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/linear_rnn/hgrn.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

namespace tz::testing {
namespace {
double hgrn_scan_vs_loop() {
  Generator gen(13);
  nn::Hgrn m(nn::hgrn_options({.dim = 6, .heads = 1, .context = 64, .depth = 3, .layer = 1}, nn::Config::parse("{}")),
             gen);
  m.to(DType::f64);
  Tensor x = randn({2, 37, 6}, gen, DType::f64).requires_grad_();
  Tensor w = randn({2, 37, 6, 2}, gen, DType::f64);
  auto run = [&](bool fast) {
    m.zero_grad();
    x.zero_grad();
    nn::Hgrn::ScanInputs in = m.scan_inputs(x);
    Tensor h = fast ? scan(in.a, in.b, Tensor(), {.chunk = 8, .complex = true}) : scan_composite(in.a, in.b, {}, true);
    sum(h * w).backward();
    std::vector<Tensor> out{h.detach(), x.grad().clone()};
    for (const auto& [name, p] : m.named_parameters())
      if (p.grad().defined()) out.push_back(p.grad().clone());
    return out;
  };
  std::vector<Tensor> a = run(true), b = run(false);
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() >= 2 + 7);  // x, and f, r, i weights and biases and theta
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, max_abs_diff(a[i], b[i]));
  return worst;
}
}  // namespace

TZ_PROOF(hgrn, "chunked complex scan == sequential, forget gate never below its layer bound, decode == forward") {
  const double scan_err = hgrn_scan_vs_loop();
  CHECK(scan_err <= 1e-10);
  const double step_err = lm_step_vs_forward(R"({"mixer": "hgrn", "norm": "rmsnorm"})", 11);
  CHECK(step_err <= 1e-9);

  Generator gen(14);
  const int64_t L = 4;
  double worst_margin = INFINITY;
  for (int64_t l = 0; l < L; ++l) {
    nn::Hgrn m(
        nn::hgrn_options({.dim = 16, .heads = 1, .context = 64, .depth = L, .layer = l}, nn::Config::parse("{}")), gen);
    m.to(DType::f64);
    NoGradGuard no_grad;
    const double bound = double(l) / double(L);
    CHECK(m.options.lower_bound == bound);
    for (double scale : {1.0, 1000.0}) {
      Tensor x = randn({2, 50, 16}, gen, DType::f64) * scale;
      std::vector<double> lam = m.scan_inputs(x).lambda.to_vector<double>();
      const double lo = *std::min_element(lam.begin(), lam.end());
      INFO("layer ", l, " scale ", scale, ": min forget gate ", lo, ", bound ", bound);
      CHECK(lo >= bound);
      if (scale > 1) CHECK(lo - bound <= 1e-12);  // saturated: the gate sits on its bound
      worst_margin = std::min(worst_margin, lo - bound);
    }
  }
  MESSAGE("scan vs loop ", scan_err, ", step vs forward ", step_err, ", min (forget gate - bound) ", worst_margin);
  TZ_PROOF_NUMBER("min (forget gate - gamma_l)", worst_margin);
}

}  // namespace tz::testing
