// The linear attention kernel's three forms agree (train/forms_agree.h: recurrent == chunked at
// c in {1, 2, 3, 8, 16, T = 37} == parallel, out, final state and every gradient to 1e-10 in
// f64, continuations, unit and steep decays) for both decay layouts, with the bonus, the
// normaliser and an initial state; the hand-written backward equals the composite op's; f32
// (SIMD on and off, 1 and 2 threads) agrees with f64 and stays finite at steep decays.
#include <set>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/kernels/linear_attention.h"
#include "core/linear_attention.h"
#include "core/parallel.h"
#include "core/random.h"
#include "tests/test_util.h"
#include "train/forms_agree.h"

using namespace tz;
using forms::FormOutput;

namespace {
constexpr int64_t kB = 2, kH = 2, kK = 4, kV = 3;

struct Cfg {
  const char* name;
  bool channel = false;    // g [B, H, T, Dk] instead of [B, H, T]
  bool bonus = false;      // RWKV-6's u
  bool normalise = false;  // linear attention's denominator (positive q, k)
};

LinearAttentionSpec spec_of(const Cfg& c, const std::vector<Tensor>& x, const Tensor& h0, LinearAttentionForm form,
                            int64_t chunk) {
  return {.log_decay = x[3],
          .bonus = c.bonus ? x[4] : Tensor(),
          .h0 = h0,
          .normalise = c.normalise,
          .form = form,
          .chunk = chunk};
}

forms::KernelForms kernel_forms(const Cfg& c) {
  auto run = [c](const std::vector<Tensor>& x, const Tensor& h0, LinearAttentionForm f, int64_t chunk) {
    LinearAttentionResult r = linear_attention(x[0], x[1], x[2], spec_of(c, x, h0, f, chunk));
    return FormOutput{r.out, r.state};
  };
  return {
      .name = c.name,
      .naive = [run](const std::vector<Tensor>& x,
                     const Tensor& h0) { return run(x, h0, LinearAttentionForm::recurrent, 1); },
      .chunked = [run](const std::vector<Tensor>& x, const Tensor& h0,
                       int64_t ch) { return run(x, h0, LinearAttentionForm::chunked, ch); },
      .quadratic = [run](const std::vector<Tensor>& x,
                         const Tensor& h0) { return run(x, h0, LinearAttentionForm::parallel, 1); },
      .make_inputs =
          [c](int64_t T, Generator& gen) {
            Shape gs = c.channel ? Shape{kB, kH, T, kK} : Shape{kB, kH, T};
            auto qk = [&](uint64_t) {
              return c.normalise ? rand({kB, kH, T, kK}, gen, DType::f64, 0.1, 1.0)
                                 : randn({kB, kH, T, kK}, gen, DType::f64);
            };
            std::vector<forms::Input> in{{"q", qk(0), 2},
                                         {"k", qk(1), 2},
                                         {"v", randn({kB, kH, T, kV}, gen, DType::f64), 2},
                                         {"g", rand(gs, gen, DType::f64, -0.7, -0.05), 2}};
            if (c.bonus) in.push_back({"u", randn({kH, kK}, gen, DType::f64), forms::kNoTime});
            return in;
          },
      .state_shape =
          [c](const std::vector<forms::Input>&) {
            return Shape{kB, kH, kK, kV + (c.normalise ? 1 : 0)};
          },
      .out_time_dim = 2,
      .log_decays = {"g"},
  };
}

void check_forms(const Cfg& c) {
  forms::FormsResult r = forms::forms_agree(kernel_forms(c));
  CHECK_MESSAGE(r.ok, r.failure_report());
  CHECK(r.max_error <= 1e-10);
  CHECK(r.skipped.empty());
  std::set<int64_t> chunks;
  std::set<std::string> checks;
  for (const auto& l : r.lines) {
    if (l.form == "chunked") chunks.insert(l.chunk);
    checks.insert(l.check.substr(0, l.check.find(' ')));
  }
  CHECK(chunks == std::set<int64_t>{1, 2, 3, 8, 16, 37});
  CHECK(checks.count("gate") == 1);
  CHECK(checks.count("continue") == 1);
  MESSAGE(std::string(c.name), ": ", r.lines.size(), " comparisons, max relative error ", r.max_error);
}
}  // namespace

TEST_CASE("linear_attention forms agree: per-head decay (RetNet, Mamba-2 layout)") {
  check_forms({.name = "per-head decay"});
}
TEST_CASE("linear_attention forms agree: per-channel decay (GLA layout)") {
  check_forms({.name = "per-channel decay", .channel = true});
}
TEST_CASE("linear_attention forms agree: per-channel decay with the RWKV-6 bonus") {
  check_forms({.name = "per-channel decay + bonus", .channel = true, .bonus = true});
}
TEST_CASE("linear_attention forms agree: per-head decay with the bonus") {
  check_forms({.name = "per-head decay + bonus", .bonus = true});
}
TEST_CASE("linear_attention forms agree: normaliser with per-head and per-channel decays") {
  check_forms({.name = "normaliser, per-head decay", .normalise = true});
  check_forms({.name = "normaliser, per-channel decay", .channel = true, .normalise = true});
}

namespace {
// Inputs of one configuration: q, k, v, g, u, h0 (u and h0 always made; used by the spec).
struct Inputs {
  Tensor q, k, v, g, u, h0;
};
Inputs make(int64_t B, int64_t H, int64_t T, int64_t Dk, int64_t Dv, bool channel, uint64_t seed, double g_lo = -0.7,
            double g_hi = -0.05) {
  Generator gen(seed);
  return {randn({B, H, T, Dk}, gen, DType::f64),
          randn({B, H, T, Dk}, gen, DType::f64),
          randn({B, H, T, Dv}, gen, DType::f64),
          rand(channel ? Shape{B, H, T, Dk} : Shape{B, H, T}, gen, DType::f64, g_lo, g_hi),
          randn({H, Dk}, gen, DType::f64),
          randn({B, H, Dk, Dv}, gen, DType::f64)};
}
LinearAttentionSpec spec(const Inputs& x, bool bonus, LinearAttentionForm form, int64_t chunk) {
  return {.log_decay = x.g, .bonus = bonus ? x.u : Tensor(), .h0 = x.h0, .form = form, .chunk = chunk};
}
}  // namespace

TEST_CASE("linear_attention: the hand-written backward equals the composite op's (f64)") {
  for (bool channel : {false, true})
    for (bool bonus : {false, true})
      for (auto form : {LinearAttentionForm::chunked, LinearAttentionForm::recurrent, LinearAttentionForm::parallel}) {
        CAPTURE(channel);
        CAPTURE(bonus);
        CAPTURE(linear_attention_form_name(form));
        Inputs x = make(2, 3, 21, 5, 4, channel, 7);
        std::vector<Tensor> leaves{x.q, x.k, x.v, x.g, x.u, x.h0};
        for (auto& t : leaves) t.requires_grad_();
        Inputs l{leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5]};
        Generator gen(9);
        Tensor wo = randn({2, 3, 21, 4}, gen, DType::f64), ws = randn({2, 3, 5, 4}, gen, DType::f64);
        auto grads = [&](const LinearAttentionResult& r) {
          for (auto& t : leaves) t.zero_grad();
          sum(r.out * wo + 0.0).backward();
          std::vector<Tensor> gs;
          for (auto& t : leaves) gs.push_back(t.grad().defined() ? t.grad().clone() : Tensor());
          return gs;
        };
        auto both = [&](const LinearAttentionResult& r) { return sum(r.out * wo) + sum(r.state * ws); };
        LinearAttentionResult fused = linear_attention(l.q, l.k, l.v, spec(l, bonus, form, 4));
        LinearAttentionResult comp = linear_attention_composite(l.q, l.k, l.v, spec(l, bonus, form, 4));
        CHECK(testing::rel_rms(fused.out, comp.out) < 1e-12);
        CHECK(testing::rel_rms(fused.state, comp.state) < 1e-12);
        for (auto& t : leaves) t.zero_grad();
        both(fused).backward();
        std::vector<Tensor> gf;
        for (auto& t : leaves) gf.push_back(t.grad().defined() ? t.grad().clone() : Tensor());
        for (auto& t : leaves) t.zero_grad();
        both(comp).backward();
        const char* names[] = {"q", "k", "v", "g", "u", "h0"};
        for (size_t i = 0; i < leaves.size(); ++i) {
          CAPTURE(names[i]);
          if (i == 4 && !bonus) {
            CHECK_FALSE(gf[i].defined());
            continue;
          }
          REQUIRE(gf[i].defined());
          CHECK(testing::rel_rms(gf[i], leaves[i].grad()) < 1e-12);
        }
        (void)grads;
      }
}

TEST_CASE(
    "linear_attention f32: finite and agreeing with f64 at steep, unit and guard-edge decays, SIMD on/off, 1-2 "
    "threads") {
  const int64_t B = 2, H = 2, T = 77, Dk = 16, Dv = 8;
  const int prev_threads = get_num_threads();
  double worst = 0;
  for (bool channel : {false, true})
    for (int gate = 0; gate < 4; ++gate) {
      Inputs x = make(B, H, T, Dk, Dv, channel, 11 + uint64_t(gate));
      Generator gen(5);
      const Shape gs = x.g.shape();
      // 0: ordinary; 1: unit decay; 2: steep chunks summing to -1000 (chunk 16);
      // 3: every block of 16 just under and over the factorisation guard (-b_L about 40)
      if (gate == 1) x.g = forms::unit_log_decay(gs);
      if (gate == 2) x.g = forms::steep_log_decay(gs, 2, 16, -1000, gen);
      if (gate == 3) x.g = rand(gs, gen, DType::f64, -2.6, -2.4);
      const std::string gate_names[] = {"ordinary", "unit", "steep -1000", "guard edge"};
      CAPTURE(channel);
      CAPTURE(gate_names[gate]);
      for (bool bonus : {false, true}) {
        LinearAttentionResult ref = linear_attention(x.q, x.k, x.v, spec(x, bonus, LinearAttentionForm::recurrent, 1));
        Inputs xf{x.q.to(DType::f32), x.k.to(DType::f32), x.v.to(DType::f32),
                  x.g.to(DType::f32), x.u.to(DType::f32), x.h0.to(DType::f32)};
        for (bool simd : {true, false})
          for (int threads : {1, 2}) {
            set_simd_enabled(simd);
            set_num_threads(threads);
            for (int64_t c : {16, 64}) {
              CAPTURE(bonus);
              CAPTURE(simd);
              CAPTURE(threads);
              CAPTURE(c);
              LinearAttentionResult r =
                  linear_attention(xf.q, xf.k, xf.v, spec(xf, bonus, LinearAttentionForm::chunked, c));
              const double eo = testing::rel_rms(r.out, ref.out), es = testing::rel_rms(r.state, ref.state);
              CHECK(eo < 2e-5);  // inf (so fails) on NaN or Inf
              CHECK(es < 2e-5);
              worst = std::max({worst, eo, es});
            }
          }
        set_simd_enabled(true);
        set_num_threads(prev_threads);
      }
    }
  MESSAGE("f32 chunked vs f64 recurrent, out and state: max relative RMS error ", worst);
}

TEST_CASE("linear_attention f32 backward agrees with f64 at steep decays, SIMD on and off") {
  for (bool channel : {false, true}) {
    Inputs x = make(1, 2, 40, 8, 4, channel, 21);
    Generator gen(2);
    x.g = forms::steep_log_decay(x.g.shape(), 2, 8, -1000, gen);
    Tensor go = randn({1, 2, 40, 4}, gen, DType::f64), gs = randn({1, 2, 8, 4}, gen, DType::f64);
    LinearAttentionSpec s64 = spec(x, true, LinearAttentionForm::recurrent, 1);
    core::LinearAttentionGrads ref = core::linear_attention_backward(go, gs, x.q, x.k, x.v, s64);
    for (bool simd : {true, false}) {
      CAPTURE(channel);
      CAPTURE(simd);
      set_simd_enabled(simd);
      LinearAttentionSpec s32{
          .log_decay = x.g.to(DType::f32), .bonus = x.u.to(DType::f32), .h0 = x.h0.to(DType::f32), .chunk = 8};
      core::LinearAttentionGrads r = core::linear_attention_backward(
          go.to(DType::f32), gs.to(DType::f32), x.q.to(DType::f32), x.k.to(DType::f32), x.v.to(DType::f32), s32);
      CHECK(testing::rel_rms(r.dq, ref.dq) < 1e-5);
      CHECK(testing::rel_rms(r.dk, ref.dk) < 1e-5);
      CHECK(testing::rel_rms(r.dv, ref.dv) < 1e-5);
      CHECK(testing::rel_rms(r.dg, ref.dg) < 1e-4);
      CHECK(testing::rel_rms(r.du, ref.du) < 1e-5);
      CHECK(testing::rel_rms(r.dh0, ref.dh0) < 1e-5);
    }
    set_simd_enabled(true);
  }
}

TEST_CASE("linear_attention rejects wrong shapes and dtypes, naming them") {
  Inputs x = make(1, 2, 5, 3, 2, false, 1);
  CHECK_THROWS_WITH_AS(linear_attention(x.q, x.k.narrow(2, 0, 4), x.v, {}), doctest::Contains("q, k [B, H, T, Dk]"),
                       Error);
  CHECK_THROWS_WITH_AS(linear_attention(x.q, x.k, x.v, {.log_decay = x.g.narrow(2, 0, 4)}),
                       doctest::Contains("log_decay must be [B, H, T]"), Error);
  CHECK_THROWS_WITH_AS(linear_attention(x.q, x.k, x.v, {.bonus = x.u.narrow(0, 0, 1)}),
                       doctest::Contains("bonus u must be [H, Dk]"), Error);
  CHECK_THROWS_WITH_AS(linear_attention(x.q, x.k, x.v, {.h0 = x.h0.narrow(3, 0, 1)}),
                       doctest::Contains("h0 must be [B, H, Dk, Dv]"), Error);
  CHECK_THROWS_WITH_AS(linear_attention(x.q, x.k, x.v, {.chunk = 0}), doctest::Contains("chunk must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(linear_attention(x.q, x.k.to(DType::f32), x.v, {}), doctest::Contains("dtypes differ"), Error);
  // the tensor-level forward's outputs and kept states
  Tensor out = empty({1, 2, 5, 2}, DType::f64), state = empty({1, 2, 3, 2}, DType::f64);
  CHECK_THROWS_WITH_AS(core::linear_attention(empty({1, 2, 4, 2}, DType::f64), state, x.q, x.k, x.v, {}),
                       doctest::Contains("out must be [B, H, T, Dv] = [1, 2, 5, 2]"), Error);
  CHECK_THROWS_WITH_AS(core::linear_attention(out, state, x.q, x.k, x.v, {}, empty({7}, DType::f64)),
                       doctest::Contains("starts must come from linear_attention_starts"), Error);
  const LinearAttentionSpec rec{.form = LinearAttentionForm::recurrent};
  CHECK_FALSE(core::linear_attention_starts(x.q, x.v, rec).defined());
  CHECK_THROWS_WITH_AS(
      core::linear_attention(out, state, x.q, x.k, x.v, rec, core::linear_attention_starts(x.q, x.v, {})),
      doctest::Contains("starts must come from linear_attention_starts"), Error);
}

TEST_CASE("linear_attention: the decode step (recurrent, T = 1) continues a chunked prefill exactly") {
  Inputs x = make(2, 2, 30, 6, 5, true, 31);
  LinearAttentionResult full = linear_attention(x.q, x.k, x.v, spec(x, true, LinearAttentionForm::chunked, 8));
  LinearAttentionResult pre =
      linear_attention(x.q.narrow(2, 0, 23), x.k.narrow(2, 0, 23), x.v.narrow(2, 0, 23),
                       {.log_decay = x.g.narrow(2, 0, 23), .bonus = x.u, .h0 = x.h0, .chunk = 8});
  Tensor S = pre.state;
  double err = 0;
  for (int64_t t = 23; t < 30; ++t) {
    LinearAttentionResult st = linear_attention(
        x.q.narrow(2, t, 1), x.k.narrow(2, t, 1), x.v.narrow(2, t, 1),
        {.log_decay = x.g.narrow(2, t, 1), .bonus = x.u, .h0 = S, .form = LinearAttentionForm::recurrent});
    err = std::max(err, testing::rel_rms(st.out, full.out.narrow(2, t, 1)));
    S = st.state;
  }
  MESSAGE("prefill 23 + 7 decode steps vs one chunked run: max rel. error ", err);
  CHECK(err < 1e-12);
  CHECK(testing::rel_rms(S, full.state) < 1e-12);
}
