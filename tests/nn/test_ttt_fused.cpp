// The fused TTT-Linear op (core/kernels/ttt.h) against the dual form built from autograd ops
// (nn/linear_rnn/ttt_inner.h), one mini-batch at a time: outputs, final weights, inner losses
// and the gradients of all eight inputs, in f64 and f32, at T not a multiple of the
// mini-batch, a mini-batch of 1 and one longer than T, shared and per-row initial weights,
// learning rates of 0 and large ones; and the errors for bad shapes.
#include <doctest/doctest.h>

#include <string>

#include "autograd/ops.h"
#include "core/random.h"
#include "nn/linear_rnn/ttt_inner.h"
#include "tests/test_util.h"

using namespace tz;
using testing::rel_rms;

namespace {
struct Case {
  std::vector<Tensor> x;  // q, k, v, eta, W0, b0, ln_w, ln_b
  int64_t mb;
};

Case make_case(int64_t B, int64_t H, int64_t T, int64_t D, int64_t mb, bool batched, double eta_max, DType dt,
               uint64_t seed) {
  Generator g(seed);
  const int64_t wb = batched ? B : 1;
  Case c{{randn({B, H, T, D}, g, dt), randn({B, H, T, D}, g, dt), randn({B, H, T, D}, g, dt),
          rand({B, H, T, 1}, g, dt, 0.0, eta_max), randn({wb, H, D, D}, g, dt) * (1.0 / std::sqrt(double(D))),
          randn({wb, H, 1, D}, g, dt) * 0.1, rand({1, H, 1, D}, g, dt, 0.5, 1.5), randn({1, H, 1, D}, g, dt) * 0.1},
         mb};
  for (Tensor& t : c.x) t = t.detach().requires_grad_();
  return c;
}

// The dual form from ops: a segment per mini-batch, each from the weights the last one left.
TttLinearResult composite(const Case& c) {
  const auto& x = c.x;
  const int64_t T = x[0].size(2);
  nn::TttWeights w{{x[4], x[5]}};
  std::vector<Tensor> zs, losses;
  for (int64_t s = 0; s < T; s += c.mb) {
    const int64_t L = std::min(c.mb, T - s);
    nn::TttSegment seg =
        nn::ttt_segment(nn::TttKind::linear, nn::TttForm::dual, x[0].narrow(2, s, L), x[1].narrow(2, s, L),
                        x[2].narrow(2, s, L), x[3].narrow(2, s, L), w, w, x[6], x[7]);
    zs.push_back(seg.z);
    losses.push_back(seg.loss);
    w = seg.next;
  }
  const int64_t B = x[0].size(0);
  auto full = [&](const Tensor& t) { return t.size(0) == B ? t : t.expand({B, t.size(1), t.size(2), t.size(3)}); };
  return {cat(zs, 2), full(w.w[0]), full(w.w[1]), cat(losses, 2)};
}

// The worst relative RMS difference of the results and of the gradients of a random
// functional of all four results.
double fused_vs_composite(const Case& c) {
  Generator g(7);
  auto run = [&](const TttLinearResult& r) {
    for (const Tensor& t : c.x) t.zero_grad();
    std::vector<Tensor> out{r.z, r.W, r.b, r.loss};
    Tensor loss = zeros({}, c.x[0].dtype());
    Generator gg(11);
    for (const Tensor& t : out) loss = loss + sum(t * randn(t.shape(), gg, t.dtype()));
    loss.backward();
    std::vector<Tensor> res;
    for (const Tensor& t : out) res.push_back(t.detach());
    for (const Tensor& t : c.x) res.push_back(t.grad().clone());
    return res;
  };
  const std::vector<Tensor> a = run(ttt_linear({c.x[0], c.x[1], c.x[2], c.x[3], c.x[4], c.x[5], c.x[6], c.x[7], c.mb}));
  const std::vector<Tensor> b = run(composite(c));
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, rel_rms(a[i], b[i]));
  return worst;
}
}  // namespace

TEST_CASE("ttt_linear fused == the dual form from ops: results and gradients of every input") {
  for (DType dt : {DType::f64, DType::f32})
    for (auto [T, mb, batched, eta_max] : {std::tuple{37, 4, false, 0.05},
                                           {37, 16, true, 0.05},
                                           {9, 1, false, 0.05},
                                           {9, 64, true, 0.05},
                                           {20, 4, false, 0.0},
                                           {20, 4, true, 2.0}}) {
      INFO(std::string(dtype_name(dt)), " T ", T, " mini-batch ", mb, " batched ", batched, " eta max ", eta_max);
      const double err = fused_vs_composite(make_case(2, 2, T, 8, mb, batched, eta_max, dt, uint64_t(T + mb)));
      MESSAGE(std::string(dtype_name(dt)), " T ", T, " b ", mb, ": max rel. RMS difference ", err);
      CHECK(err <= (dt == DType::f64 ? 1e-12 : 1e-5));
    }
}

TEST_CASE("ttt_linear refuses bad shapes and mini-batch sizes by name") {
  Case c = make_case(2, 1, 5, 3, 2, false, 0.1, DType::f64, 1);
  auto with = [&](int i, const Tensor& t, int64_t mb = 2) {
    std::vector<Tensor> x = c.x;
    x[size_t(i)] = t;
    return ttt_linear({x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], mb});
  };
  CHECK_THROWS_WITH_AS(with(3, zeros({2, 1, 5}, DType::f64)), doctest::Contains("eta must be [B, H, T, 1]"), Error);
  CHECK_THROWS_WITH_AS(with(4, zeros({3, 1, 3, 3}, DType::f64)), doctest::Contains("W0 and b0 must be"), Error);
  CHECK_THROWS_WITH_AS(with(6, zeros({1, 1, 1, 4}, DType::f64)), doctest::Contains("ln_w and ln_b must be"), Error);
  CHECK_THROWS_WITH_AS(with(1, zeros({2, 1, 5, 3}, DType::f32)), doctest::Contains("q's float dtype"), Error);
  CHECK_THROWS_WITH_AS(with(0, c.x[0], 0), doctest::Contains("minibatch must be >= 1"), Error);
}
