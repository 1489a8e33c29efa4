// Proof of gMLP's spatial gating unit (nn/ffn/gmlp.h): gmlp.
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/ffn/gmlp.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
constexpr int64_t kC = 6, kF = 4, kL = 16, kT = 11;

std::shared_ptr<nn::Gmlp> unit(double eps = 1e-3) {
  Generator gen(5);
  auto g = std::make_shared<nn::Gmlp>(kC, kF, kL, eps, gen);
  g->to(DType::f64);
  return g;
}

// y_t = V (Z1_t ⊙ (Σ_{j≤t} W_tj LN(Z2)_j + b_t)) + b_V, the sum as a plain loop.
Tensor reference(nn::Gmlp& g, const Tensor& x) {
  std::vector<Tensor> z = chunk(gelu(g.up->forward(x)), 2, -1);
  Tensor n2 = g.gate_norm->forward(z[1]);
  const int64_t B = x.size(0), T = x.size(1);
  Tensor gate = zeros({B, T, kF}, DType::f64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t f = 0; f < kF; ++f) {
        double sum = g.spatial_bias.at({t});
        for (int64_t j = 0; j <= t; ++j) sum += g.spatial_weight.at({t, j}) * n2.at({b, j, f});
        gate.set({b, t, f}, sum);
      }
  return g.down->forward(z[0] * gate);
}
}  // namespace

TZ_PROOF(gmlp, "the causal spatial gate equals its loops. At init the unit is the channel MLP (Z1 ⊙ 1) V") {
  NoGradGuard ng;
  Generator gx(6);
  Tensor x = randn({2, kT, kC}, gx, DType::f64);
  auto g = unit();
  // At init W is within ±1e-3 / L of 0 and b = 1: the unit is the channel MLP V (Z1 ⊙ 1) to
  // within that, and with W = 0 exactly.
  Tensor channel_mlp = g->down->forward(chunk(gelu(g->up->forward(x)), 2, -1)[0]);
  const double near = testing::max_abs_diff(g->forward(x, {}), channel_mlp);
  core::fill_(g->spatial_weight, 0.0);
  const double exact = testing::max_abs_diff(g->forward(x, {}), channel_mlp);
  MESSAGE("at init: |gMLP - channel MLP| = ", near, "; with W = 0: ", exact);
  TZ_PROOF_NUMBER("init |gMLP - channel MLP|", near);
  CHECK(near < 1e-3);
  CHECK(exact == 0.0);

  // A trained-looking W: every entry random, above the diagonal too (the mask, not the
  // values, must keep the future out).
  core::copy_(g->spatial_weight, randn({kL, kL}, gx, DType::f64));
  core::copy_(g->spatial_bias, randn({kL}, gx, DType::f64));
  const double loops = testing::max_abs_diff(g->forward(x, {}), reference(*g, x));
  Tensor x2 = x.clone();
  core::copy_(x2.narrow(1, 5, kT - 5), randn({2, kT - 5, kC}, gx, DType::f64));
  const double prefix = testing::max_abs_diff(g->forward(x2, {}).narrow(1, 0, 5), g->forward(x, {}).narrow(1, 0, 5));
  const double suffix =
      testing::max_abs_diff(g->forward(x2, {}).narrow(1, 5, kT - 5), g->forward(x, {}).narrow(1, 5, kT - 5));
  // Token by token, and 4 + 7, from a state.
  auto st = g->make_state(2, kL, DType::f64);
  std::vector<Tensor> steps;
  for (int64_t t = 0; t < kT; ++t) steps.push_back(g->forward(x.narrow(1, t, 1), {.start = t}, st.get()));
  auto st2 = g->make_state(2, kL, DType::f64);
  Tensor a = g->forward(x.narrow(1, 0, 4), {.start = 0}, st2.get());
  Tensor b = g->forward(x.narrow(1, 4, kT - 4), {.start = 4}, st2.get());
  const double step = testing::max_abs_diff(cat(steps, 1), g->forward(x, {}));
  const double chunks = testing::max_abs_diff(cat({a, b}, 1), g->forward(x, {}));
  MESSAGE("random W: vs loops ", loops, "; prefix moved by a changed suffix ", prefix, " (suffix ", suffix,
          "); token by token ", step, "; chunks 4 + 7 ", chunks);
  CHECK(loops < 1e-12);
  CHECK(prefix == 0.0);
  CHECK(suffix > 1e-3);
  CHECK(step < 1e-12);
  CHECK(chunks < 1e-12);
  CHECK_THROWS_WITH_AS(g->forward(randn({1, kL + 1, kC}, gx, DType::f64), {}), doctest::Contains("exceed"), Error);
}
