// forms_agree on a small decayed linear attention written here in its three forms, and on
// planted bugs it must catch, each reported by form, chunk size and quantity.
//
// The subject (gated linear attention with a scalar decay per step and head, as in RetNet
// arXiv 2307.08621 with a data-dependent decay, or GLA arXiv 2312.06635 with one gate per
// head). Shapes: q, k [B, H, T, K], v [B, H, T, V], log-decay g [B, H, T] (g <= 0), state
// S [B, H, K, V], out [B, H, T, V].
//   naive      S_t = exp(g_t) S_{t-1} + k_t^T v_t,   o_t = q_t S_t
//   quadratic  with G_t = g_1 + ... + g_t:
//              o_t = sum_{s<=t} exp(G_t - G_s) (q_t . k_s) v_s + exp(G_t) q_t S_0
//              S_T = exp(G_T) S_0 + sum_s exp(G_T - G_s) k_s^T v_s
//   chunked    the quadratic form on chunks of c tokens, G restarting in each chunk, the
//              state carried from chunk to chunk.
// The decays stay in log space: only differences G_t - G_s (s <= t) and G_t themselves,
// all <= 0, are exponentiated, and the s > t entries are masked to -inf before exp (after
// it, exp(+large) = inf would make the backward 0 * inf = NaN).
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/test_util.h"
#include "train/forms_agree.h"

#include <set>

using namespace tz;
using forms::FormOutput;

namespace {
constexpr int64_t kB = 2, kH = 2, kK = 4, kV = 3;

// Planted bugs (none by default).
struct Bugs {
  bool drop_state = false;   // chunked: chunks after the first start from a zero state
  bool lone_cumsum = false;  // chunked: exp(G_t) * exp(-G_s) instead of exp(G_t - G_s)
  bool forget_h0 = false;    // every form starts from zeros whatever h0 is
  bool detach_h0 = false;    // chunked: h0 enters detached, so its gradient is lost
};

FormOutput la_naive(const std::vector<Tensor>& x, const Tensor& h0, const Bugs& bug) {
  const Tensor &q = x[0], &k = x[1], &v = x[2], &g = x[3];
  Tensor S = bug.forget_h0 ? zeros(h0.shape(), DType::f64) : h0;
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < q.size(2); ++t) {
    Tensor decay = exp(g.narrow(2, t, 1)).unsqueeze(-1);                             // [B, H, 1, 1]
    S = decay * S + matmul(k.narrow(2, t, 1).transpose(-1, -2), v.narrow(2, t, 1));  // [B, H, K, V]
    outs.push_back(matmul(q.narrow(2, t, 1), S));                                    // [B, H, 1, V]
  }
  return {cat(outs, 2), S};
}

// One block of L tokens from state S (the quadratic form on it): out [B, H, L, V], state.
FormOutput la_block(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& S,
                    const Bugs& bug) {
  const int64_t L = q.size(2);
  Tensor G = cumsum(g, 2);                            // [B, H, L], within the block
  Tensor Gt = G.unsqueeze(-1), Gs = G.unsqueeze(-2);  // [B, H, L, 1], [B, H, 1, L]
  Tensor GL = G.narrow(2, L - 1, 1);                  // [B, H, 1]
  Tensor A, kw;                                       // A [B, H, L, L]: decayed scores
  if (bug.lone_cumsum) {
    A = matmul(q * exp(Gt), (k * exp(-Gt)).transpose(-1, -2));
    A = masked_fill(A, triu(ones({L, L}, DType::f64), 1), 0.0);
    kw = k * (exp(GL).unsqueeze(-1) * exp(-Gt));
  } else {
    Tensor D = masked_fill(Gt - Gs, triu(ones({L, L}, DType::f64), 1), -INFINITY);  // term 1: G_t - G_s, s <= t
    A = matmul(q, k.transpose(-1, -2)) * exp(D);
    kw = k * exp(GL - G).unsqueeze(-1);  // exp(G_L - G_s) k_s
  }
  Tensor out = matmul(A, v) + matmul(q * exp(Gt), S);  // term 2: the state from before the block
  Tensor state = exp(GL).unsqueeze(-1) * S + matmul(kw.transpose(-1, -2), v);
  return {out, state};
}

FormOutput la_quadratic(const std::vector<Tensor>& x, const Tensor& h0, const Bugs& bug) {
  return la_block(x[0], x[1], x[2], x[3], bug.forget_h0 ? zeros(h0.shape(), DType::f64) : h0, Bugs{});
}

FormOutput la_chunked(const std::vector<Tensor>& x, const Tensor& h0, int64_t c, const Bugs& bug) {
  const int64_t T = x[0].size(2);
  Tensor S = bug.forget_h0 ? zeros(h0.shape(), DType::f64) : bug.detach_h0 ? h0.detach() : h0;
  std::vector<Tensor> outs;
  for (int64_t t0 = 0; t0 < T; t0 += c) {
    const int64_t L = std::min(c, T - t0);
    FormOutput b =
        la_block(x[0].narrow(2, t0, L), x[1].narrow(2, t0, L), x[2].narrow(2, t0, L), x[3].narrow(2, t0, L), S, bug);
    outs.push_back(b.out);
    S = bug.drop_state && t0 + L < T ? zeros(b.state.shape(), DType::f64) : b.state;
  }
  return {cat(outs, 2), S};
}

forms::KernelForms linear_attention(const Bugs& bug = {}) {
  return {
      .name = "decayed linear attention",
      .naive = [bug](const std::vector<Tensor>& x, const Tensor& h0) { return la_naive(x, h0, bug); },
      .chunked = [bug](const std::vector<Tensor>& x, const Tensor& h0, int64_t c) { return la_chunked(x, h0, c, bug); },
      .quadratic = [bug](const std::vector<Tensor>& x, const Tensor& h0) { return la_quadratic(x, h0, bug); },
      .make_inputs =
          [](int64_t T, Generator& gen) {
            Tensor g = rand({kB, kH, T}, gen, DType::f64, -0.7, -0.05);  // decays in [0.50, 0.95]
            return std::vector<forms::Input>{{"q", randn({kB, kH, T, kK}, gen, DType::f64), 2},
                                             {"k", randn({kB, kH, T, kK}, gen, DType::f64), 2},
                                             {"v", randn({kB, kH, T, kV}, gen, DType::f64), 2},
                                             {"g", g, 2}};
          },
      .state_shape =
          [](const std::vector<forms::Input>&) {
            return Shape{kB, kH, kK, kV};
          },
      .out_time_dim = 2,
      .log_decays = {"g"},
  };
}

std::set<int64_t> failing_chunks(const forms::FormsResult& r, const std::string& form) {
  std::set<int64_t> s;
  for (const auto& c : r.failures())
    if (c.form == form) s.insert(c.chunk);
  return s;
}
}  // namespace

TEST_CASE("forms_agree: the decayed linear attention's naive, chunked and quadratic forms agree") {
  forms::FormsResult r = forms::forms_agree(linear_attention());
  MESSAGE(r.report());
  CHECK_MESSAGE(r.ok, r.failure_report());
  CHECK(r.max_error <= 1e-10);
  CHECK(r.skipped.empty());
  // What ran: 6 chunk sizes x (full, continuations, 2 gates), quadratic likewise, and the
  // naive loop's continuations; each comparing out, state and 5 gradients.
  std::set<std::string> checks;
  std::set<int64_t> chunks;
  std::set<std::string> quantities;
  for (const auto& c : r.lines) {
    checks.insert(c.check);
    if (c.form == "chunked") chunks.insert(c.chunk);
    quantities.insert(c.quantity);
  }
  CHECK(chunks == std::set<int64_t>{1, 2, 3, 8, 16, 37});
  CHECK(quantities == std::set<std::string>{"out", "state", "grad q", "grad k", "grad v", "grad g", "grad h0"});
  for (const char* want : {"full", "continue", "gate unit_decay", "gate steep_decay", "used"})
    CHECK_MESSAGE(
        std::any_of(checks.begin(), checks.end(), [&](const std::string& c) { return c.rfind(want, 0) == 0; }), "no '",
        want, "' comparison ran");
  MESSAGE(r.lines.size(), " comparisons, max relative error ", r.max_error);
}

TEST_CASE("forms_agree catches a chunked form that drops the state at chunk boundaries") {
  forms::FormsResult r = forms::forms_agree(linear_attention({.drop_state = true}));
  MESSAGE(r.failure_report());
  CHECK_FALSE(r.ok);
  // Every chunk size with a boundary inside the run fails; one chunk of all T has none.
  CHECK(failing_chunks(r, "chunked") == std::set<int64_t>{1, 2, 3, 8, 16});
  bool out_named = false;
  for (const auto& c : r.failures()) {
    CHECK(c.form == "chunked");
    out_named = out_named || (c.check == "full" && c.quantity == "out" && c.chunk == 8);
  }
  CHECK(out_named);
}

TEST_CASE("forms_agree catches a chunked form that exponentiates a lone cumulative sum, at the steep gate only") {
  forms::FormsResult r = forms::forms_agree(linear_attention({.lone_cumsum = true}));
  MESSAGE(r.failure_report());
  CHECK_FALSE(r.ok);
  // On ordinary decays exp(G_t) exp(-G_s) is exact enough in f64: only the gate shows it.
  CHECK(failing_chunks(r, "chunked") == std::set<int64_t>{1, 2, 3, 8, 16, 37});
  for (const auto& c : r.failures()) {
    CHECK(c.form == "chunked");
    CHECK(c.check == "gate steep_decay");
    CHECK(c.detail.find("NaN/Inf") != std::string::npos);
  }
}

TEST_CASE("forms_agree catches forms that all forget the initial state, by continuation") {
  forms::FormsResult r = forms::forms_agree(linear_attention({.forget_h0 = true}));
  MESSAGE(r.failure_report());
  CHECK_FALSE(r.ok);
  // The forms agree with each other on one run (they all ignore h0 alike): only running
  // in two parts, and the unused h0, give it away.
  std::set<int64_t> continued;
  bool unused_h0 = false;
  for (const auto& c : r.failures()) {
    CHECK_MESSAGE((c.check.rfind("continue", 0) == 0 || c.check == "used"), c.str());
    if (c.form == "chunked" && c.check.rfind("continue", 0) == 0) continued.insert(c.chunk);
    unused_h0 = unused_h0 || (c.check == "used" && c.quantity == "grad h0");
  }
  CHECK(continued == std::set<int64_t>{1, 2, 3, 8, 16, 37});
  CHECK(unused_h0);
  CHECK(failing_chunks(r, "naive") == std::set<int64_t>{0});
  CHECK(failing_chunks(r, "quadratic") == std::set<int64_t>{0});
}

TEST_CASE("forms_agree catches a chunked form whose gradient w.r.t. h0 is lost (detached)") {
  forms::FormsResult r = forms::forms_agree(linear_attention({.detach_h0 = true}));
  MESSAGE(r.failure_report());
  CHECK_FALSE(r.ok);
  CHECK(failing_chunks(r, "chunked") == std::set<int64_t>{1, 2, 3, 8, 16, 37});
  for (const auto& c : r.failures()) {
    CHECK(c.form == "chunked");
    CHECK(c.quantity.rfind("grad ", 0) == 0);  // out and state are right
    // On one run only h0's gradient is lost; run in two parts, the second part's h0 is the
    // first part's state, so the gradients of the first part's tokens through it go too.
    if (c.check == "full") CHECK(c.quantity == "grad h0");
  }
}

TEST_CASE("forms_agree: the gate inputs") {
  Tensor u = forms::unit_log_decay({2, 37});
  CHECK(testing::max_abs_diff(u, zeros({2, 37}, DType::f64)) == 0);
  Generator gen(3);
  for (int64_t c : {1, 3, 16, 37}) {
    CAPTURE(c);
    Tensor g = forms::steep_log_decay({2, 37, 3}, 1, c, -1000, gen);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t t0 = 0, j = 0; t0 < 37; t0 += c, ++j) {
          double s = 0, lo = 0;
          for (int64_t t = t0; t < std::min<int64_t>(t0 + c, 37); ++t) {
            s += g.at({b, t, h});
            lo = std::min(lo, g.at({b, t, h}));
            CHECK(g.at({b, t, h}) <= 0);
          }
          if (j % 2 == 0)
            CHECK(std::abs(s + 1000) < 1e-9);  // steep: the whole chunk_sum
          else
            CHECK(lo >= -0.1);  // gentle
        }
  }
}

TEST_CASE("forms_agree rejects a T that is a multiple of a chunk size, and bad inputs, naming them") {
  forms::KernelForms k = linear_attention();
  CHECK_THROWS_WITH_AS(forms::forms_agree(k, {.T = 48}), doctest::Contains("multiple of chunk"), Error);
  CHECK_THROWS_WITH_AS(forms::forms_agree(k, {.T = 37, .chunks = {2, 40}}), doctest::Contains("chunk sizes"), Error);
  forms::KernelForms f32 = k;
  f32.make_inputs = [mk = k.make_inputs](int64_t T, Generator& gen) {
    auto in = mk(T, gen);
    in[1].value = in[1].value.to(DType::f32);
    return in;
  };
  CHECK_THROWS_WITH_AS(forms::forms_agree(f32), doctest::Contains("input 'k' must be f64"), Error);
  forms::KernelForms bad_decay = k;
  bad_decay.log_decays = {"gate"};
  CHECK_THROWS_WITH_AS(forms::forms_agree(bad_decay), doctest::Contains("'gate'"), Error);
}

TEST_CASE("forms_agree reports a form that throws, and a form with the wrong output shape, as failures") {
  forms::KernelForms k = linear_attention();
  k.chunked = [](const std::vector<Tensor>& x, const Tensor& h0, int64_t c) {
    TZ_CHECK(c != 3, "chunk 3 is not supported");
    FormOutput o = la_chunked(x, h0, c, {});
    if (c == 8) o.out = o.out.narrow(2, 0, o.out.size(2) - 1);
    return o;
  };
  forms::FormsResult r = forms::forms_agree(k, {.continuation = false, .gates = false});
  MESSAGE(r.failure_report());
  CHECK(failing_chunks(r, "chunked") == std::set<int64_t>{3, 8});
  CHECK(r.failure_report().find("chunk 3 is not supported") != std::string::npos);
  CHECK(r.skipped.size() == 2);
}
