// Proofs of the fast-weight mixers (nn/linear_rnn/deltanet, nn/linear_rnn/ttt*): their state is
// the weight matrix of a model trained while the sequence is read. DeltaNet: the recurrent
// delta rule == the chunked WY form (chunks 1, 3, 8, T; T = 29, a multiple of none) on outputs
// and the input gradient in f64, decode == forward, and an overwrite at beta = 1 reads back
// exactly. TTT: the dual form == the primal mini-batch gradient descent, b = 1 == the online
// per-token recurrence written out, the inner loss falls on a repeating sequence, decode ==
// forward.
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/linear_rnn/deltanet.h"
#include "nn/linear_rnn/ttt.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;
using tz::testing::rel_max;

namespace {
constexpr int64_t kB = 2, kT = 29, kC = 16, kH = 2;

// Mixer `id` (dim 16, heads 2) from seed 3 in f64 with the config overlay `json`.
std::shared_ptr<nn::Mixer> make(const std::string& id, const std::string& json) {
  Generator gen(3);
  nn::Config c = nn::Config::parse(json);
  auto m = zoo::registry().make_mixer(id, nn::ModelDims{.dim = kC, .heads = kH, .context = 64, .depth = 1}, c, gen);
  m->to(DType::f64);
  return m;
}

struct Run {
  Tensor out, dx;
};
Run run(nn::Mixer& m, const Tensor& x0, const Tensor& w) {
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor y = m.forward(x, {});
  sum(y * w).backward();
  return {y.detach(), x.grad()};
}

// A prefill of `a` tokens in one call, then token by token from the state: the outputs joined.
Tensor decoded(nn::Mixer& m, const Tensor& x, int64_t a) {
  NoGradGuard no_grad;
  auto state = m.make_state(x.size(0), x.size(1), DType::f64);
  std::vector<Tensor> outs{m.forward(x.narrow(1, 0, a), {.start = 0}, state.get())};
  for (int64_t t = a; t < x.size(1); ++t) outs.push_back(m.forward(x.narrow(1, t, 1), {.start = t}, state.get()));
  return cat(outs, 1);
}
}  // namespace

TZ_PROOF(deltanet, "recurrent == chunked WY form (chunks 1, 3, 8, T), decode == forward, overwrite read back exactly") {
  Generator gen(5);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64), w = randn({kB, kT, kC}, gen, DType::f64);
  Run ref = run(*make("deltanet", R"({"linear_form": "recurrent"})"), x, w);
  double worst = 0;
  for (int64_t c : {int64_t(1), int64_t(3), int64_t(8), kT}) {
    Run r = run(*make("deltanet", cat_str(R"({"linear_chunk": )", c, "}")), x, w);
    const double e = std::max(rel_max(r.out, ref.out), rel_max(r.dx, ref.dx));
    INFO("chunk ", c, ": ", e);
    CHECK(e < 1e-10);
    worst = std::max(worst, e);
  }
  const double ed = rel_max(decoded(*make("deltanet", R"({"linear_chunk": 4})"), x, 11), ref.out);
  INFO("prefill 11 + decode: ", ed);
  CHECK(ed < 1e-10);
  // The fast-weight memory: keys e_0, e_1 orthonormal (after the mixer's L2 norm the kernel
  // sees them as given), beta = 1. Write (e_0, a), (e_1, b), then (e_0, a'): reading e_0 gives
  // a', e_1 gives b, exactly; the sum of linear attention would give a + a' at e_0.
  Tensor k = zeros({1, 1, 4, 2}, DType::f64), q = zeros({1, 1, 4, 2}, DType::f64);
  for (int64_t t : {0, 2, 3}) k.set({0, 0, t, 0}, 1.0);
  k.set({0, 0, 1, 1}, 1.0);
  q.set({0, 0, 2, 0}, 1.0);  // reads e_0 after the overwrite
  q.set({0, 0, 3, 1}, 1.0);  // reads e_1
  Tensor v = randn({1, 1, 4, 3}, gen, DType::f64), beta = from_vector(std::vector<double>{1, 1, 1, 0}, {1, 1, 4});
  double er = 0;
  for (auto form : {LinearAttentionForm::recurrent, LinearAttentionForm::chunked}) {
    DeltaRuleResult r = delta_rule(q, k, v, beta, {.form = form, .chunk = 3});
    for (int64_t j = 0; j < 3; ++j) {
      er = std::max(er, std::abs(r.out.at({0, 0, 2, j}) - v.at({0, 0, 2, j})));
      er = std::max(er, std::abs(r.out.at({0, 0, 3, j}) - v.at({0, 0, 1, j})));
    }
  }
  CHECK(er < 1e-15);
  MESSAGE("deltanet: forms ", worst, ", decode ", ed, ", retrieval after overwrite ", er);
  TZ_PROOF_NUMBER("max rel. error over forms and decode", std::max(worst, ed));
}

namespace {
// TTT mixer `id` with mini-batch b, form and inner lr scale.
std::shared_ptr<nn::Ttt> make_ttt(const std::string& id, int64_t b, const std::string& form, double lr = 1.0) {
  auto m = std::dynamic_pointer_cast<nn::Ttt>(
      make(id, cat_str(R"({"ttt_minibatch": )", b, R"(, "ttt_form": ")", form, R"(", "ttt_lr": )", lr, "}")));
  REQUIRE(m);
  return m;
}

// The online recurrence written out, one token at a time, with the inner gradient taken by
// autograd: W_t = W_{t-1} - η_t ∇_W |f(k_t; W_{t-1}) - v_t|^2, z_t = f(q_t; W_t).
Tensor online(const nn::Ttt& m, const Tensor& x) {
  std::vector<Tensor> in = m.inner_inputs(x);
  const int64_t B = x.size(0), T = x.size(1);
  const bool mlp = m.options.kind == nn::TttKind::mlp;
  auto f = [&](const Tensor& a, const std::vector<Tensor>& w) {
    Tensor r = mlp ? matmul(gelu_tanh(matmul(a, w[0]) + w[1]), w[2]) + w[3] : matmul(a, w[0]) + w[1];
    return a + layer_norm(r, Tensor(), Tensor(), 1e-6) * m.ln_weight + m.ln_bias;
  };
  std::vector<Tensor> w;
  for (const Tensor& t : m.w0) {
    Shape s = t.shape();
    s[0] = B;
    w.push_back(t.detach().expand(s).contiguous());
  }
  std::vector<Tensor> zs;
  for (int64_t t = 0; t < T; ++t) {
    Tensor q = in[0].narrow(2, t, 1).detach(), k = in[1].narrow(2, t, 1).detach(), v = in[2].narrow(2, t, 1).detach();
    Tensor eta = in[3].narrow(2, t, 1).detach();
    std::vector<Tensor> leaves;
    for (const Tensor& wi : w) leaves.push_back(wi.detach().clone().requires_grad_());
    Tensor e = f(k, leaves) - v;
    sum(e * e).backward();  // each (batch, head) owns its W: the sum's gradient is each one's own
    for (size_t i = 0; i < w.size(); ++i) w[i] = w[i] - eta * leaves[i].grad();
    NoGradGuard no_grad;
    zs.push_back(f(q, w).detach());
  }
  return cat(zs, 2);
}

double ttt_proof(const std::string& id) {
  Generator gen(5);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64), w = randn({kB, kT, kC}, gen, DType::f64);
  double worst = 0;
  // dual == primal, outputs and the outer gradient dL/dx, at b = 16, 4, 1 (T = 29: partial last batch)
  for (int64_t b : {int64_t(16), int64_t(4), int64_t(1)}) {
    Run p = run(*make_ttt(id, b, "primal"), x, w), d = run(*make_ttt(id, b, "dual"), x, w);
    const double e = std::max(rel_max(d.out, p.out), rel_max(d.dx, p.dx));
    INFO(id, " dual vs primal, b ", b, ": ", e);
    CHECK(e < 1e-10);
    worst = std::max(worst, e);
  }
  // b = 1 is the online recurrence (gradients by autograd, not the forms' written-out ones)
  auto m1 = make_ttt(id, 1, "dual");
  Tensor z1 = m1->inner(x, 0, nullptr).z.detach();
  const double eo = rel_max(z1, online(*m1, x));
  INFO(id, " b = 1 vs the online recurrence: ", eo);
  CHECK(eo < 1e-10);
  // decode == forward: a prefill of 11 (inside the third mini-batch of 4), then token by token
  auto m4 = make_ttt(id, 4, "dual");
  Tensor full;
  {
    NoGradGuard no_grad;
    full = m4->forward(x, {});
  }
  const double ed = rel_max(decoded(*m4, x, 11), full);
  INFO(id, " prefill 11 + decode: ", ed);
  CHECK(ed < 1e-10);
  // The inner loss falls along a sequence that repeats a pattern of 8 tokens 8 times: with
  // b = 8 each mini-batch sees the pattern once more; its loss before its step is printed per
  // repetition. f's LN output lies on a sphere (zero mean, radius sqrt(D) at γ = 1, β = 0, the
  // initial values), so part of the loss no weights can remove: the floor |y - sqrt(D) y_c /
  // |y_c||^2 with y = v - k, y_c its centred part. The excess over it is what TTT learns.
  NoGradGuard no_grad;
  auto m8 = make_ttt(id, 8, "dual");
  Tensor pat = randn({1, 8, kC}, gen, DType::f64);
  Tensor xs = cat(std::vector<Tensor>(8, pat), 1);
  Tensor loss = m8->inner(xs, 0, nullptr).loss;  // [1, H, 64]
  std::vector<Tensor> in = m8->inner_inputs(xs);
  Tensor y = in[2] - in[1], yc = y - mean(y, {-1}, true);
  Tensor proj = yc * rsqrt(sum(yc * yc, {-1}, true)) * std::sqrt(double(kC / kH));
  Tensor excess = loss - sum((y - proj) * (y - proj), {-1});
  std::vector<double> per;
  std::string raw, ex;
  for (int64_t r = 0; r < 8; ++r) {
    per.push_back(mean(excess.narrow(2, r * 8, 8)).item());
    raw += cat_str(" ", mean(loss.narrow(2, r * 8, 8)).item());
    ex += cat_str(" ", per.back());
  }
  MESSAGE(id, " inner loss per repetition:", raw, "\n  excess over the LN floor:", ex);
  for (size_t r = 1; r < per.size(); ++r) CHECK(per[r] < per[r - 1]);
  CHECK(per.back() < 0.8 * per.front());  // measured: 0.63 (linear), 0.70 (MLP) at the default η
  MESSAGE(id, ": dual vs primal ", worst, ", b = 1 vs online ", eo, ", decode ", ed);
  return std::max({worst, eo, ed});
}
}  // namespace

TZ_PROOF(ttt_linear,
         "dual == primal mini-batch GD (b 16, 4, 1), b = 1 == online recurrence, inner loss falls, decode") {
  TZ_PROOF_NUMBER("max rel. error, dual vs primal, online, decode", ttt_proof("ttt_linear"));
}

TZ_PROOF(ttt_mlp, "dual == primal mini-batch GD (b 16, 4, 1), b = 1 == online recurrence, inner loss falls, decode") {
  TZ_PROOF_NUMBER("max rel. error, dual vs primal, online, decode", ttt_proof("ttt_mlp"));
}
