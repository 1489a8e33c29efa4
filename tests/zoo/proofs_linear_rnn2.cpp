// Proofs of HGRN2, RWKV-6, Mamba-2 and ABC (nn/linear_rnn/, nn/ssm/mamba2): each mixer's
// forms agree — the recurrent loop, the chunked form at chunks 1, 3, 8 and T (T = 29, a
// multiple of none) and the materialised parallel form — on outputs, the input gradient and
// every tensor of the final decoding state in f64, and a chunked prefill followed by token
// by token decoding equals the whole forward, outputs and final state. Plus each row's own
// property, written out in plain ops or loops.
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/linear_rnn/abc.h"
#include "nn/linear_rnn/hgrn2.h"
#include "nn/linear_rnn/rwkv6.h"
#include "nn/ssm/mamba2.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;
using tz::testing::rel_max;

namespace {
constexpr int64_t kB = 2, kT = 29, kC = 16, kH = 2;

// Mixer `id` (dim 16, heads 2, layer `layer` of `depth`) from seed 3 in f64, with the form,
// the chunk and the keys of `extra` (JSON members, or "").
std::shared_ptr<nn::Mixer> make(const std::string& id, const std::string& form, int64_t chunk,
                                const std::string& extra = "", int64_t layer = 0, int64_t depth = 1) {
  Generator gen(3);
  nn::Config c = nn::Config::parse(
      cat_str(R"({"linear_form": ")", form, R"(", "linear_chunk": )", chunk, extra.empty() ? "" : ", ", extra, "}"));
  auto m = zoo::registry().make_mixer(
      id, nn::ModelDims{.dim = kC, .heads = kH, .context = 64, .depth = depth, .layer = layer}, c, gen);
  m->to(DType::f64);
  return m;
}

// Every tensor of a decoding state, in visiting order.
struct Collect : nn::StateVisitor {
  std::vector<Tensor> tensors;
  void tensor(const std::string&, Tensor& t) override {
    if (t.defined()) tensors.push_back(t);
  }
  void count(const std::string&, int64_t&) override {}
  void nested(const std::string&, nn::MixerState& s) override { s.visit(*this); }
};
std::vector<Tensor> state_tensors(nn::MixerState& s) {
  Collect c;
  s.visit(c);
  return c.tensors;
}

struct Run {
  Tensor out, dx;
  std::vector<Tensor> state;
};
// A whole-sequence forward from an empty state; the loss weighs the output and every tensor
// of the final state, so that dx carries the state's gradient too.
Run run(nn::Mixer& m, const Tensor& x0, const Tensor& w) {
  auto st = m.make_state(kB, kT, DType::f64);
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor y = m.forward(x, {.start = 0}, st.get());
  Tensor loss = sum(y * w);
  std::vector<Tensor> s = state_tensors(*st);
  Generator gen(17);
  for (const Tensor& t : s) loss = loss + sum(t * randn(t.shape(), gen, DType::f64));
  loss.backward();
  Run r{y.detach(), x.grad(), {}};
  for (const Tensor& t : s) r.state.push_back(t.detach());
  return r;
}

// The largest relative error over forms and chunks (out, dL/dx, final state) and decoding
// (out, final state) against the recurrent form.
double forms_and_decode(const std::string& id, const std::string& extra = "", int64_t layer = 0, int64_t depth = 1) {
  Generator gen(5);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64), w = randn({kB, kT, kC}, gen, DType::f64);
  Run ref = run(*make(id, "recurrent", 1, extra, layer, depth), x, w);
  REQUIRE(!ref.state.empty());
  double worst = 0;
  auto note = [&](const std::string& what, double e) {
    INFO(id, " ", what, ": ", e);
    CHECK(e < 1e-10);
    worst = std::max(worst, e);
  };
  auto states = [&](const std::vector<Tensor>& s) {
    double e = s.size() == ref.state.size() ? 0 : INFINITY;
    for (size_t i = 0; i < s.size() && i < ref.state.size(); ++i) e = std::max(e, rel_max(s[i], ref.state[i]));
    return e;
  };
  auto compare = [&](const std::string& form, int64_t chunk) {
    Run r = run(*make(id, form, chunk, extra, layer, depth), x, w);
    note(cat_str(form, " chunk ", chunk, " out, dx"), std::max(rel_max(r.out, ref.out), rel_max(r.dx, ref.dx)));
    note(cat_str(form, " chunk ", chunk, " final state"), states(r.state));
  };
  compare("parallel", 1);
  for (int64_t c : {int64_t(1), int64_t(3), int64_t(8), kT}) compare("chunked", c);
  // decode: a chunked prefill of 11 tokens, then token by token (the recurrent step)
  NoGradGuard no_grad;
  auto m = make(id, "chunked", 4, extra, layer, depth);
  auto state = m->make_state(kB, kT, DType::f64);
  std::vector<Tensor> outs{m->forward(x.narrow(1, 0, 11), {.start = 0}, state.get())};
  for (int64_t t = 11; t < kT; ++t) outs.push_back(m->forward(x.narrow(1, t, 1), {.start = t}, state.get()));
  note("prefill 11 + decode out", rel_max(cat(outs, 1), ref.out));
  note("prefill 11 + decode final state", states(state_tensors(*state)));
  return worst;
}
}  // namespace

TZ_PROOF(hgrn2, "recurrent == chunkwise (chunks 1, 3, 8, T) == parallel, out, dx, final state, == GLA, key 1 - f") {
  // layer 0 (bound 0, log f = log σ) and layer 1 of 2 (f >= 1/2)
  const double e = std::max(forms_and_decode("hgrn2"), forms_and_decode("hgrn2", "", 1, 2));
  // GLA with the key tied to 1 - f, written out as the paper's loop:
  // S_t = diag(f_t) S_{t-1} + (1 - f_t)^T i_t, o_t = q_t S_t, out = RMSNorm(o) W_o.
  auto m = make("hgrn2", "chunked", 8, "", 1, 2);
  auto* h = dynamic_cast<nn::Hgrn2*>(m.get());
  REQUIRE(h);
  CHECK(h->options.lower_bound == 0.5);
  Generator gen(7);
  Tensor x = randn({1, kT, kC}, gen, DType::f64);
  NoGradGuard no_grad;
  nn::Hgrn2::Inputs in = h->inputs(x);
  const int64_t D = kC / kH;
  std::vector<double> o(size_t(kH * kT * D), 0.0);
  double tie = 0, floor = 1;
  for (int64_t hh = 0; hh < kH; ++hh) {
    std::vector<double> S(size_t(D * D), 0.0);
    for (int64_t t = 0; t < kT; ++t) {
      for (int64_t a = 0; a < D; ++a) {
        const double f = std::exp(in.log_f.at({0, hh, t, a}));
        floor = std::min(floor, f);
        tie = std::max(tie, std::abs(in.k.at({0, hh, t, a}) - (1 - f)));
        for (int64_t b = 0; b < D; ++b)
          S[size_t(a * D + b)] = f * S[size_t(a * D + b)] + (1 - f) * in.v.at({0, hh, t, b});
      }
      for (int64_t b = 0; b < D; ++b)
        for (int64_t a = 0; a < D; ++a)
          o[size_t((hh * kT + t) * D + b)] += in.q.at({0, hh, t, a}) * S[size_t(a * D + b)];
    }
  }
  Tensor want = h->o_proj->forward(rms_norm(nn::merge_heads(from_vector(o, {1, kH, kT, D})), h->norm_weight));
  const double eg = rel_max(m->forward(x, {}), want);
  INFO("key vs 1 - f: ", tie, "; smallest f ", floor, "; chunked mixer vs the written-out loop: ", eg);
  CHECK(tie < 1e-15);
  CHECK(floor >= 0.5);
  CHECK(eg < 1e-12);
  TZ_PROOF_NUMBER("max rel. error over forms, decode and the GLA loop", std::max(e, eg));
}

TZ_PROOF(rwkv6, "recurrent == chunked (1, 3, 8, T) == parallel, decode == forward (token shift), Eagle") {
  const double e = std::max({forms_and_decode("rwkv6"), forms_and_decode("rwkv6", "", 1, 2),
                             forms_and_decode("rwkv6", R"("rwkv5_eagle": true)", 1, 2)});
  Generator gen(7);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64);
  {  // Finch's decay moves with the token, Eagle's (RWKV-5) does not
    NoGradGuard no_grad;
    auto finch = make("rwkv6", "chunked", 8), eagle = make("rwkv6", "chunked", 8, R"("rwkv5_eagle": true)");
    Tensor xp = nn::token_shift(x, nullptr);
    Tensor wf = dynamic_cast<nn::Rwkv6&>(*finch).inputs(x, xp).log_w;
    Tensor we = dynamic_cast<nn::Rwkv6&>(*eagle).inputs(x, xp).log_w;
    const double moves = rel_max(wf.narrow(2, 0, 1), wf.narrow(2, 5, 1));
    const double fixed = rel_max(we.narrow(2, 0, 1), we.narrow(2, 5, 1));
    INFO("log w at t = 0 vs t = 5: Finch ", moves, ", Eagle ", fixed);
    CHECK(moves > 1e-3);
    CHECK(fixed == 0);
  }
  // Steep decays stay finite in f32: d = 4 gives log w = -exp(4) = -54.6 per step (w = 2e-24,
  // a block of 8 sums to -437); the chunked form in f32 agrees with the f64 recurrence.
  auto r32 = make("rwkv6", "chunked", 8), r64 = make("rwkv6", "recurrent", 1);
  auto* a = dynamic_cast<nn::Rwkv6*>(r32.get());
  auto* b = dynamic_cast<nn::Rwkv6*>(r64.get());
  REQUIRE((a && b));
  core::fill_(a->decay, 4.0);
  core::fill_(b->decay, 4.0);
  a->to(DType::f32);
  Tensor y32 = a->forward(x.to(DType::f32), {}).to(DType::f64), y64 = b->forward(x, {});
  const double es = rel_max(y32, y64);
  INFO("steep decays, f32 chunked vs f64 recurrent: ", es);
  CHECK(es < 1e-4);
  TZ_PROOF_NUMBER("max rel. error over forms and decode", e);
}

TZ_PROOF(rwkv6_channel_mix, "decode from the shift state == forward, the shift is used, mu = 0: no token mixing") {
  Generator gen(31);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64);
  // Decoding token by token through the mixer's state equals the whole forward (and the
  // shift matters: without the state the outputs move).
  nn::RwkvChannelMix cm({.dim = kC, .layer = 1, .depth = 2}, gen);
  cm.to(DType::f64);
  NoGradGuard no_grad;
  Tensor full = cm.forward(x, {});
  auto state = cm.make_state(kB, kT, DType::f64);
  std::vector<Tensor> outs{cm.forward(x.narrow(1, 0, 5), {.start = 0}, state.get())};
  for (int64_t t = 5; t < kT; ++t) outs.push_back(cm.forward(x.narrow(1, t, 1), {.start = t}, state.get()));
  const double ec = rel_max(cat(outs, 1), full);
  const double moved = rel_max(cm.mix(x.narrow(1, 5, 1)), full.narrow(1, 5, 1));
  INFO("channel mix decode vs forward: ", ec, "; without the shift state: ", moved);
  CHECK(ec < 1e-12);
  CHECK(moved > 1e-3);
  // With mu_k = mu_r = 0 the lerps return x_t itself: a token-wise FFN, position t alone.
  core::fill_(cm.mu_k, 0.0);
  core::fill_(cm.mu_r, 0.0);
  Tensor y = cm.forward(x, {}), alone = cm.forward(x.narrow(1, 7, 1), {});
  const double pointwise = rel_max(y.narrow(1, 7, 1), alone);
  MESSAGE("rwkv6_channel_mix: decode vs forward ", ec, "; mu = 0, position 7 alone vs in the sequence ", pointwise);
  CHECK(pointwise < 1e-14);
  TZ_PROOF_NUMBER("decode vs forward", ec);
}

namespace {
constexpr const char* kMamba2Keys = R"("ssm_state": 4, "ssm_head_dim": 8, "ssm_groups": 2)";  // E 32, M 4, G 2

// The quadratic (attention-like) dual of SSD in plain ops: Y = (L ∘ Cm Bm^T) (Δ x) with
// L_ij = exp(c_i - c_j) for j <= i (c the cumulative log-decay), and the final state
// h_T = sum_j exp(c_T - c_j) Bm_j^T (Δ x)_j.
LinearAttentionResult ssd_dual(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_a) {
  const int64_t T = q.size(2);
  std::vector<double> above(size_t(T * T), 0.0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = i + 1; j < T; ++j) above[size_t(i * T + j)] = 1;
  Tensor c = cumsum(log_a, 2);                    // [B, M, T]
  Tensor diff = c.unsqueeze(3) - c.unsqueeze(2);  // c_i - c_j
  Tensor L = exp(masked_fill(diff, from_vector(above, {1, 1, T, T}), -INFINITY));
  Tensor y = matmul(L * matmul(q, k.transpose(-1, -2)), v);
  Tensor last = c.narrow(2, T - 1, 1) - c;  // c_T - c_j
  Tensor h = matmul((k * exp(last).unsqueeze(3)).transpose(-1, -2), v);
  return {y, h};
}
}  // namespace

TZ_PROOF(mamba2, "chunked SSD == quadratic dual (L ∘ CB^T)X == recurrence: out, state, grads (f64), decode") {
  const double e = forms_and_decode("mamba2", kMamba2Keys);
  auto m = make("mamba2", "chunked", 8, kMamba2Keys);
  auto* mb = dynamic_cast<nn::Mamba2*>(m.get());
  REQUIRE(mb);
  Generator gen(7);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64);
  nn::Mamba2::Ssd s;
  {
    NoGradGuard no_grad;
    s = mb->ssd_inputs(x, nullptr);
  }
  CHECK(s.q.shape() == Shape{kB, 4, kT, 4});
  CHECK(s.v.shape() == Shape{kB, 4, kT, 8});
  // heads 0, 1 share group 0's B and C, heads 2, 3 group 1's
  CHECK(rel_max(s.k.narrow(1, 0, 1), s.k.narrow(1, 1, 1)) == 0);
  CHECK(rel_max(s.k.narrow(1, 1, 1), s.k.narrow(1, 2, 1)) > 1e-3);
  // the SSD core on the mixer's own inputs: the chunked kernel (chunk 8), the recurrence and the
  // quadratic dual, outputs, final states and the gradients of q, k, v and log a
  Tensor w = randn({kB, 4, kT, 8}, gen, DType::f64), ws = randn({kB, 4, 4, 8}, gen, DType::f64);
  struct Grads {
    LinearAttentionResult r;
    std::vector<Tensor> d;
  };
  auto grads = [&](auto f) {
    std::vector<Tensor> in{s.q.detach().clone().requires_grad_(), s.k.detach().clone().requires_grad_(),
                           s.v.detach().clone().requires_grad_(), s.log_a.detach().clone().requires_grad_()};
    LinearAttentionResult r = f(in[0], in[1], in[2], in[3]);
    (sum(r.out * w) + sum(r.state * ws)).backward();
    Grads g{{r.out.detach(), r.state.detach()}, {}};
    for (auto& t : in) g.d.push_back(t.grad());
    return g;
  };
  auto kernel = [&](LinearAttentionForm form) {
    return [form](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g) {
      return linear_attention(q, k, v, {.log_decay = g, .form = form, .chunk = 8});
    };
  };
  Grads dual = grads(ssd_dual), chunked = grads(kernel(LinearAttentionForm::chunked)),
        rec = grads(kernel(LinearAttentionForm::recurrent));
  double ed = 0;
  for (const Grads* g : {&chunked, &rec}) {
    ed = std::max({ed, rel_max(g->r.out, dual.r.out), rel_max(g->r.state, dual.r.state)});
    for (size_t i = 0; i < 4; ++i) ed = std::max(ed, rel_max(g->d[i], dual.d[i]));
  }
  INFO("chunked SSD and recurrence vs the quadratic dual (out, state, dq, dk, dv, dlog a): ", ed);
  CHECK(ed < 1e-10);
  // the mixer's output is the dual's plus D x through the gated norm and out_proj
  NoGradGuard no_grad;
  const double em = rel_max(m->forward(x, {}), mb->finish(dual.r.out, s));
  INFO("mixer vs the dual form finished: ", em);
  CHECK(em < 1e-12);
  TZ_PROOF_NUMBER("max rel. error, chunked vs dual vs recurrence and decode", std::max({e, ed, em}));
}

TZ_PROOF(abc_bounded_memory, "recurrent == parallel (forms, the slot loop), one-hot control with n >= L == softmax") {
  const double e = forms_and_decode("abc_bounded_memory", R"("abc_slots": 5)");
  auto m = make("abc_bounded_memory", "parallel", 1, R"("abc_slots": 5)");
  auto* abc = dynamic_cast<nn::Abc*>(m.get());
  REQUIRE(abc);
  Generator gen(7);
  Tensor x = randn({1, kT, kC}, gen, DType::f64);
  NoGradGuard no_grad;
  const int64_t D = kC / kH, n = 5;
  Tensor q = nn::split_heads(abc->q_proj->forward(x), kH) * (1.0 / std::sqrt(double(D)));
  Tensor k = nn::split_heads(abc->k_proj->forward(x), kH), v = nn::split_heads(abc->v_proj->forward(x), kH);
  Tensor lphi = abc->log_control(x);
  // The paper's recurrence, slot by slot: K̃_t = diag(1 / Z_t) sum_j φ_j^T k_j (Ṽ_t likewise),
  // out_t = softmax(q_t K̃_t^T) Ṽ_t.
  std::vector<double> out(size_t(kH * kT * D), 0.0);
  for (int64_t h = 0; h < kH; ++h) {
    std::vector<double> Z(size_t(n), 0.0), NK(size_t(n * D), 0.0), NV(size_t(n * D), 0.0);
    for (int64_t t = 0; t < kT; ++t) {
      std::vector<double> s(size_t(n), 0.0);
      double smax = -INFINITY, total = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double phi = std::exp(lphi.at({0, h, t, i}));
        Z[size_t(i)] += phi;
        for (int64_t d = 0; d < D; ++d) {
          NK[size_t(i * D + d)] += phi * k.at({0, h, t, d});
          NV[size_t(i * D + d)] += phi * v.at({0, h, t, d});
          s[size_t(i)] += q.at({0, h, t, d}) * NK[size_t(i * D + d)] / Z[size_t(i)];
        }
        smax = std::max(smax, s[size_t(i)]);
      }
      for (int64_t i = 0; i < n; ++i) total += std::exp(s[size_t(i)] - smax);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t d = 0; d < D; ++d)
          out[size_t((h * kT + t) * D + d)] +=
              std::exp(s[size_t(i)] - smax) / total * NV[size_t(i * D + d)] / Z[size_t(i)];
    }
  }
  const double er = rel_max(abc->attend(q, k, v, lphi, nullptr), from_vector(out, {1, kH, kT, D}));
  INFO("parallel form vs the slot-by-slot recurrence: ", er);
  CHECK(er < 1e-12);
  // n = L = 12 slots and the one-hot control φ_t = e_t (log φ = 0 at slot t, -inf elsewhere):
  // slot t holds k_t and v_t from step t on, and ABC is causal softmax attention.
  const int64_t L = 12;
  std::vector<double> onehot(size_t(kH * L * L), -INFINITY), above(size_t(L * L), 0.0);
  for (int64_t h = 0; h < kH; ++h)
    for (int64_t t = 0; t < L; ++t) onehot[size_t((h * L + t) * L + t)] = 0;
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = i + 1; j < L; ++j) above[size_t(i * L + j)] = 1;
  Tensor qs = q.narrow(2, 0, L), ks = k.narrow(2, 0, L), vs = v.narrow(2, 0, L);
  Tensor want =
      matmul(softmax(masked_fill(matmul(qs, ks.transpose(-1, -2)), from_vector(above, {1, 1, L, L}), -INFINITY)), vs);
  double es = 0;
  for (auto form : {LinearAttentionForm::recurrent, LinearAttentionForm::chunked, LinearAttentionForm::parallel}) {
    abc->options.form = form;
    es = std::max(es, rel_max(abc->attend(qs, ks, vs, from_vector(onehot, {1, kH, L, L}), nullptr), want));
  }
  INFO("one-hot control, n = L: ABC vs causal softmax attention, all forms: ", es);
  CHECK(es < 1e-12);
  TZ_PROOF_NUMBER("max rel. error: forms, slot loop, one-hot vs softmax", std::max({e, er, es}));
}
