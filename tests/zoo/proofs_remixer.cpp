// Proof of the Remixer's causal remixing (nn/ffn/remixer.h): remixer.
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/ffn/remixer.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
constexpr int64_t kC = 6, kF = 8, kL = 16, kT = 11;

// u = GELU(g) ⊙ u; m_t = Σ_{j≤t} softmax_j(M_t) u_j; out = W_out(α u⊙m + (1−α)(u − m)): loops.
Tensor reference(nn::Remixer& r, const Tensor& x, double alpha) {
  std::vector<Tensor> ug = chunk(r.in->forward(x), 2, -1);
  Tensor u = gelu(ug[1]) * ug[0];
  const int64_t B = x.size(0), T = x.size(1);
  Tensor y = zeros({B, T, kF}, DType::f64);
  for (int64_t t = 0; t < T; ++t) {
    double top = -INFINITY, sum = 0;
    for (int64_t j = 0; j <= t; ++j) top = std::max(top, r.mix.at({t, j}));
    std::vector<double> p(size_t(t + 1));
    for (int64_t j = 0; j <= t; ++j) sum += (p[size_t(j)] = std::exp(r.mix.at({t, j}) - top));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t f = 0; f < kF; ++f) {
        double m = 0;
        for (int64_t j = 0; j <= t; ++j) m += p[size_t(j)] / sum * u.at({b, j, f});
        const double ut = u.at({b, t, f});
        y.set({b, t, f}, alpha * ut * m + (1 - alpha) * (ut - m));
      }
  }
  return r.out->forward(y);
}
}  // namespace

TZ_PROOF(remixer,
         "the causal remix equals its loops. α = 1 and α = 0 give the multiplicative and subtractive forms alone") {
  NoGradGuard ng;
  Generator gen(12), gx(13);
  nn::Remixer r(kC, kF, kL, gen);
  r.to(DType::f64);
  Tensor x = randn({2, kT, kC}, gx, DType::f64);
  double worst = 0;
  // a = 0 (α = ½), and a = ±40, where σ(a) is 1 and 4e-18 in f64: the two pure compositions.
  for (double a : {0.0, 40.0, -40.0}) {
    core::fill_(r.alpha, a);
    const double alpha = 1 / (1 + std::exp(-a));
    Tensor want = reference(r, x, alpha);
    const double d = testing::max_abs_diff(r.forward(x, {}), want) / testing::max_abs_diff(want, zeros_like(want));
    MESSAGE("a = ", a, " (α = ", alpha, "): vs loops ", d, " (relative)");
    worst = std::max(worst, d);
  }
  TZ_PROOF_NUMBER("remix vs loops, worst relative over α", worst);
  CHECK(worst < 1e-12);
  core::fill_(r.alpha, 0.0);
  // Every entry of M random, above the diagonal too: the mask keeps the future out.
  Tensor x2 = x.clone();
  core::copy_(x2.narrow(1, 5, kT - 5), randn({2, kT - 5, kC}, gx, DType::f64));
  const double prefix = testing::max_abs_diff(r.forward(x2, {}).narrow(1, 0, 5), r.forward(x, {}).narrow(1, 0, 5));
  auto st = r.make_state(2, kL, DType::f64);
  std::vector<Tensor> steps;
  for (int64_t t = 0; t < kT; ++t) steps.push_back(r.forward(x.narrow(1, t, 1), {.start = t}, st.get()));
  const double step = testing::max_abs_diff(cat(steps, 1), r.forward(x, {}));
  MESSAGE("prefix moved by a changed suffix ", prefix, "; token by token ", step);
  CHECK(prefix == 0.0);
  CHECK(step < 1e-12);
}
