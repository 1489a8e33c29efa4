// The delta-rule kernel (core/kernels/delta_rule.h): the recurrent loop and the chunked WY
// form agree (train/forms_agree.h: chunks 1, 2, 3, 8, 16 and T = 37, out, final state and every
// gradient to 1e-10 in f64, continuations), the hand-written backward equals the composite
// op's, the op passes an f64 gradcheck, f32 agrees with f64, and with beta = 1 and orthonormal
// keys a stored pair is overwritten and read back exactly.
#include <cmath>
#include <set>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/delta_rule.h"
#include "core/random.h"
#include "tests/test_util.h"
#include "train/forms_agree.h"

using namespace tz;

namespace {
constexpr int64_t kB = 2, kH = 2, kK = 4, kV = 3;

// Keys of norm about 1 and beta in (0, 1): the regime of DeltaNet (L2-normalised keys, sigmoid beta).
Tensor unit_rows(const Tensor& x) { return x / sqrt(sum(x * x, {3}, true)); }

forms::KernelForms kernel_forms() {
  auto run = [](const std::vector<Tensor>& x, const Tensor& h0, LinearAttentionForm f, int64_t chunk) {
    DeltaRuleResult r = delta_rule(x[0], x[1], x[2], x[3], {.h0 = h0, .form = f, .chunk = chunk});
    return forms::FormOutput{r.out, r.state};
  };
  return {.name = "delta rule",
          .naive = [run](const std::vector<Tensor>& x,
                         const Tensor& h0) { return run(x, h0, LinearAttentionForm::recurrent, 1); },
          .chunked = [run](const std::vector<Tensor>& x, const Tensor& h0,
                           int64_t ch) { return run(x, h0, LinearAttentionForm::chunked, ch); },
          .make_inputs =
              [](int64_t T, Generator& gen) {
                return std::vector<forms::Input>{{"q", randn({kB, kH, T, kK}, gen, DType::f64), 2},
                                                 {"k", unit_rows(randn({kB, kH, T, kK}, gen, DType::f64)), 2},
                                                 {"v", randn({kB, kH, T, kV}, gen, DType::f64), 2},
                                                 {"beta", rand({kB, kH, T}, gen, DType::f64, 0.05, 1.0), 2}};
              },
          .state_shape =
              [](const std::vector<forms::Input>&) {
                return Shape{kB, kH, kK, kV};
              },
          .out_time_dim = 2};
}

struct Inputs {
  Tensor q, k, v, beta, h0;
};
Inputs make(int64_t B, int64_t H, int64_t T, int64_t Dk, int64_t Dv, uint64_t seed) {
  Generator gen(seed);
  Tensor q = randn({B, H, T, Dk}, gen, DType::f64), k = unit_rows(randn({B, H, T, Dk}, gen, DType::f64));
  Tensor v = randn({B, H, T, Dv}, gen, DType::f64), beta = rand({B, H, T}, gen, DType::f64, 0.05, 1.0);
  return {q, k, v, beta, randn({B, H, Dk, Dv}, gen, DType::f64)};
}
}  // namespace

TEST_CASE("delta_rule forms agree: recurrent == chunked WY form (chunks 1, 2, 3, 8, 16, T = 37), f64") {
  forms::FormsOptions opt;
  opt.gates = false;  // no decays to push to extremes: beta is tested at 1 below
  forms::FormsResult r = forms::forms_agree(kernel_forms(), opt);
  CHECK_MESSAGE(r.ok, r.failure_report());
  CHECK(r.max_error <= 1e-10);
  std::set<int64_t> chunks;
  bool cont = false;
  for (const auto& l : r.lines) {
    if (l.form == "chunked") chunks.insert(l.chunk);
    cont |= l.check.rfind("continue", 0) == 0;
  }
  CHECK(chunks == std::set<int64_t>{1, 2, 3, 8, 16, 37});
  CHECK(cont);
  MESSAGE("delta rule: ", r.lines.size(), " comparisons, max relative error ", r.max_error);
}

TEST_CASE("delta_rule: chunked == recurrent at beta = 1 and at unnormalised keys (f64)") {
  // beta = 1 makes I - k^T k a projection (singular): the WY solve must not need an inverse of it.
  for (int mode = 0; mode < 2; ++mode) {
    Inputs x = make(1, 2, 23, 5, 3, 21 + uint64_t(mode));
    if (mode == 0) x.beta = ones(x.beta.shape(), DType::f64);
    if (mode == 1) x.k = x.k * 1.3;
    DeltaRuleResult a = delta_rule(x.q, x.k, x.v, x.beta, {.h0 = x.h0, .form = LinearAttentionForm::recurrent});
    for (int64_t c : {1, 4, 7, 23}) {
      DeltaRuleResult b = delta_rule(x.q, x.k, x.v, x.beta, {.h0 = x.h0, .chunk = c});
      CAPTURE(mode);
      CAPTURE(c);
      CHECK(testing::rel_rms(b.out, a.out) < 1e-12);
      CHECK(testing::rel_rms(b.state, a.state) < 1e-12);
    }
  }
}

TEST_CASE("delta_rule: the hand-written backward equals the composite op's, both forms (f64)") {
  for (auto form : {LinearAttentionForm::chunked, LinearAttentionForm::recurrent}) {
    const std::string form_name = linear_attention_form_name(form);
    CAPTURE(form_name);
    Inputs x = make(2, 3, 21, 5, 4, 7);
    std::vector<Tensor> leaves{x.q, x.k, x.v, x.beta, x.h0};
    for (auto& t : leaves) t.requires_grad_();
    Generator gen(9);
    Tensor wo = randn({2, 3, 21, 4}, gen, DType::f64), ws = randn({2, 3, 5, 4}, gen, DType::f64);
    auto grads = [&](const DeltaRuleResult& r) {
      for (auto& t : leaves) t.zero_grad();
      (sum(r.out * wo) + sum(r.state * ws)).backward();
      std::vector<Tensor> gs;
      for (auto& t : leaves) gs.push_back(t.grad().clone());
      return gs;
    };
    const DeltaRuleSpec spec{.h0 = leaves[4], .form = form, .chunk = 4};
    DeltaRuleResult fused = delta_rule(leaves[0], leaves[1], leaves[2], leaves[3], spec);
    DeltaRuleResult comp = delta_rule_composite(leaves[0], leaves[1], leaves[2], leaves[3], spec);
    CHECK(testing::rel_rms(fused.out, comp.out) < 1e-12);
    CHECK(testing::rel_rms(fused.state, comp.state) < 1e-12);
    std::vector<Tensor> gf = grads(fused), gc = grads(comp);
    const char* names[] = {"q", "k", "v", "beta", "h0"};
    for (size_t i = 0; i < gf.size(); ++i) {
      CAPTURE(names[i]);
      CHECK(testing::rel_rms(gf[i], gc[i]) < 1e-12);
    }
  }
}

TEST_CASE("delta_rule: f64 gradcheck of the op (chunked chunk 3 and recurrent, with h0)") {
  for (auto form : {LinearAttentionForm::chunked, LinearAttentionForm::recurrent}) {
    const std::string form_name = linear_attention_form_name(form);
    CAPTURE(form_name);
    Generator gen(31);
    std::vector<Tensor> in{randn({1, 2, 7, 3}, gen, DType::f64), randn({1, 2, 7, 3}, gen, DType::f64) * 0.6,
                           randn({1, 2, 7, 2}, gen, DType::f64), rand({1, 2, 7}, gen, DType::f64, 0.1, 0.9),
                           randn({1, 2, 3, 2}, gen, DType::f64)};
    for (auto& t : in) t.requires_grad_();
    GradcheckResult r = gradcheck(
        [form](const std::vector<Tensor>& x) {
          DeltaRuleResult o = delta_rule(x[0], x[1], x[2], x[3], {.h0 = x[4], .form = form, .chunk = 3});
          return cat({o.out.reshape({-1}), o.state.reshape({-1})}, 0);
        },
        in, {.names = {"q", "k", "v", "beta", "h0"}});
    CHECK_MESSAGE(r.ok, r.report);
    MESSAGE(std::string(linear_attention_form_name(form)), ": max abs error ", r.max_abs_error);
  }
}

TEST_CASE("delta_rule f32 agrees with f64 (chunk 16, T 77, Dk 16, Dv 8)") {
  Inputs x = make(2, 2, 77, 16, 8, 13);
  DeltaRuleResult ref = delta_rule(x.q, x.k, x.v, x.beta, {.h0 = x.h0, .form = LinearAttentionForm::recurrent});
  for (auto form : {LinearAttentionForm::chunked, LinearAttentionForm::recurrent}) {
    DeltaRuleResult f = delta_rule(x.q.to(DType::f32), x.k.to(DType::f32), x.v.to(DType::f32), x.beta.to(DType::f32),
                                   {.h0 = x.h0.to(DType::f32), .form = form, .chunk = 16});
    const double eo = testing::rel_rms(f.out.to(DType::f64), ref.out),
                 es = testing::rel_rms(f.state.to(DType::f64), ref.state);
    const std::string form_name = linear_attention_form_name(form);
    CAPTURE(form_name);
    CHECK(eo < 1e-5);
    CHECK(es < 1e-5);
    MESSAGE(std::string(linear_attention_form_name(form)), " f32: rel rms out ", eo, ", state ", es);
  }
}

TEST_CASE("delta_rule: beta = 1, orthonormal keys: an overwritten pair reads back exactly, the others untouched") {
  // Keys: a rotated orthonormal basis of R^4. Write (k0, a), (k1, b), (k2, c), then (k0, a')
  // over k0; reading with q = k_i returns a', b, c. A sum (linear attention) would return a + a'.
  const double th = 0.7, ph = 0.3;
  const double R[4][4] = {{std::cos(th), std::sin(th), 0, 0},
                          {-std::sin(th), std::cos(th), 0, 0},
                          {0, 0, std::cos(ph), std::sin(ph)},
                          {0, 0, -std::sin(ph), std::cos(ph)}};
  const int order[6] = {0, 1, 2, 0, 0, 1};  // writes 0, 1, 2, 0 (overwrite); reads 0, 1 ... via q
  Generator gen(4);
  Tensor vals = randn({4, 3}, gen, DType::f64);  // a, b, c, a'
  std::vector<double> kq(size_t(6 * 4)), vv(size_t(6 * 3), 0.0), bb{1, 1, 1, 1, 0, 0};
  for (int t = 0; t < 6; ++t)
    for (int d = 0; d < 4; ++d) kq[size_t(t * 4 + d)] = R[order[t]][d];
  for (int t = 0; t < 4; ++t)
    for (int j = 0; j < 3; ++j) vv[size_t(t * 3 + j)] = vals.at({t, j});
  Tensor k = from_vector(kq, {1, 1, 6, 4}), v = from_vector(vv, {1, 1, 6, 3}), beta = from_vector(bb, {1, 1, 6});
  // q at step 4 reads k0, at step 5 k1, at step 2 k2 (after its write)
  std::vector<double> qq(size_t(6 * 4), 0.0);
  const int reads[6] = {0, 1, 2, 0, 0, 1};
  for (int t = 0; t < 6; ++t)
    for (int d = 0; d < 4; ++d) qq[size_t(t * 4 + d)] = R[reads[t]][d];
  Tensor q = from_vector(qq, {1, 1, 6, 4});
  double worst = 0;
  for (auto form : {LinearAttentionForm::recurrent, LinearAttentionForm::chunked})
    for (int64_t c : {int64_t(1), int64_t(4), int64_t(6)}) {
      DeltaRuleResult r = delta_rule(q, k, v, beta, {.form = form, .chunk = c});
      for (int j = 0; j < 3; ++j) {
        worst = std::max(worst, std::abs(r.out.at({0, 0, 3, j}) - vals.at({3, j})));  // a' after the overwrite
        worst = std::max(worst, std::abs(r.out.at({0, 0, 4, j}) - vals.at({3, j})));  // still a' (beta 0)
        worst = std::max(worst, std::abs(r.out.at({0, 0, 5, j}) - vals.at({1, j})));  // b untouched
        worst = std::max(worst, std::abs(r.out.at({0, 0, 2, j}) - vals.at({2, j})));  // c
      }
    }
  CHECK(worst < 1e-14);
  // Linear attention on the same pairs reads a + a' at k0: the overwrite is the delta rule's.
  LinearAttentionResult la = linear_attention(q, k, v, {.form = LinearAttentionForm::recurrent});
  const double la_err = std::abs(la.out.at({0, 0, 3, 0}) - vals.at({3, 0}));
  CHECK(std::abs(la_err - std::abs(vals.at({0, 0}))) < 1e-12);
  MESSAGE("delta rule retrieval error after overwrite ", worst, "; linear attention's ", la_err);
}

TEST_CASE("delta_rule: the backward from the kept chunk states equals the one that recomputes them") {
  Inputs x = make(2, 3, 21, 5, 4, 7);
  const DeltaRuleSpec spec{.h0 = x.h0, .chunk = 4};
  Tensor out = empty({2, 3, 21, 4}, DType::f64), state = empty({2, 3, 5, 4}, DType::f64);
  Tensor starts = core::delta_rule_starts(x.q, x.v, spec);
  core::delta_rule(out, state, x.q, x.k, x.v, x.beta, spec, starts);
  Generator gen(9);
  Tensor go = randn({2, 3, 21, 4}, gen, DType::f64), gs = randn({2, 3, 5, 4}, gen, DType::f64);
  core::DeltaRuleGrads kept = core::delta_rule_backward(go, gs, x.q, x.k, x.v, x.beta, spec, starts);
  core::DeltaRuleGrads swept = core::delta_rule_backward(go, gs, x.q, x.k, x.v, x.beta, spec);
  const int64_t N = 5 * 4;  // the last head's last kept state is its final state
  CHECK(testing::rel_rms(starts.narrow(0, starts.numel() - N, N), state.reshape({-1}).narrow(0, state.numel() - N, N)) <
        1e-15);
  for (auto [a, b] : {std::pair{kept.dq, swept.dq},
                      {kept.dk, swept.dk},
                      {kept.dv, swept.dv},
                      {kept.dbeta, swept.dbeta},
                      {kept.dh0, swept.dh0}})
    CHECK(testing::rel_rms(a, b) < 1e-15);
  CHECK_THROWS_WITH_AS(core::delta_rule(out, state, x.q, x.k, x.v, x.beta, spec, empty({3}, DType::f64)),
                       doctest::Contains("starts must come from delta_rule_starts"), Error);
  CHECK_THROWS_WITH_AS(core::delta_rule(empty({2, 3, 20, 4}, DType::f64), state, x.q, x.k, x.v, x.beta, spec),
                       doctest::Contains("out and state must be contiguous [B, H, T, Dv] = [2, 3, 21, 4]"), Error);
}

TEST_CASE("delta_rule: errors name what was expected") {
  Inputs x = make(1, 1, 4, 3, 2, 1);
  CHECK_THROWS_WITH_AS(delta_rule(x.q, x.k, x.v, x.beta.narrow(2, 0, 3), {}),
                       doctest::Contains("beta must be [B, H, T]"), Error);
  CHECK_THROWS_WITH_AS(delta_rule(x.q, x.k, x.v, x.beta, {.form = LinearAttentionForm::parallel}),
                       doctest::Contains("recurrent or chunked"), Error);
  CHECK_THROWS_WITH_AS(delta_rule(x.q, x.k, x.v, x.beta, {.chunk = 0}), doctest::Contains("chunk must be >= 1"), Error);
}
