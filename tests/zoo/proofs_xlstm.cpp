// Proofs of xLSTM's mixers (nn/linear_rnn/xlstm.h, the cells in xlstm_cells.h), all in f64.
//   mLSTM: the stabilised chunked (every chunk size) and parallel forms equal the recurrent
//   loop through train::forms_agree (outputs, final [C̄ | n̄, m], every gradient, continuations
//   at chunk boundaries, forget gates of log 0 and of -1000 per chunk, input gates past
//   exp's overflow); the stabilised cell equals the unstabilised formula of the paper written
//   here in plain doubles; the mixer's forms and decoding agree.
//   sLSTM: stabilised == unstabilised, decoding token by token == the unrolled forward, and
//   the gradient through the recurrence passes an f64 gradcheck.
#include <algorithm>
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/linear_rnn/mogrifier.h"
#include "nn/linear_rnn/xlstm.h"
#include "tests/test_util.h"
#include "tests/zoo/mixer_runs.h"
#include "tests/zoo/proofs.h"
#include "train/forms_agree.h"

using namespace tz;
using tz::testing::all_finite;
using tz::testing::rel_max;

namespace {
constexpr int64_t kB = 2, kH = 2, kDk = 3, kDv = 2;

// ---- mLSTM cell: forms --------------------------------------------------------------------
// The memory packed into one tensor for forms_agree: [B, H, Dk (Dv + 1) + 1] = [S flat, m].
nn::MLstmMemory unpack(const Tensor& h0) {
  const int64_t n = kDk * (kDv + 1);
  return {h0.narrow(2, 0, n).reshape({kB, kH, kDk, kDv + 1}), h0.select(2, n)};
}
forms::FormOutput pack(const nn::MLstmOutput& r) {
  return {r.h, cat({r.memory.S.reshape({kB, kH, kDk * (kDv + 1)}), r.memory.m.unsqueeze(2)}, 2)};
}
nn::MLstmInputs inputs_of(const std::vector<Tensor>& x) { return {x[0], x[1], x[2], x[3], x[4]}; }

// Input gates past exp's overflow: ĩ ~ N(0, 3) with every fourth token at 720 + N(0, 20)
// (e^709.8 is the largest double), so an unstabilised kernel meets inf.
Tensor extreme_log_i(const Shape& s, Generator& gen) {
  Tensor li = randn(s, gen, DType::f64) * 3.0;
  Tensor spike = zeros(s, DType::f64);
  for (int64_t t = 0; t < s[2]; t += 4)
    core::copy_(spike.narrow(2, t, 1), 720.0 + randn({s[0], s[1], 1}, gen, DType::f64) * 20.0);
  return li + spike;
}

// chunked_form: the form run as forms_agree's "chunked" one (chunked, or the kernel's loop).
forms::KernelForms mlstm_forms(LinearAttentionForm chunked_form) {
  return {
      .name = std::string("mlstm ") + linear_attention_form_name(chunked_form),
      .naive = [](const std::vector<Tensor>& x,
                  const Tensor& h0) { return pack(nn::mlstm_loop(inputs_of(x), unpack(h0))); },
      .chunked = [chunked_form](const std::vector<Tensor>& x, const Tensor& h0,
                                int64_t c) { return pack(nn::mlstm(inputs_of(x), unpack(h0), chunked_form, c)); },
      .quadratic =
          [](const std::vector<Tensor>& x, const Tensor& h0) {
            return pack(nn::mlstm(inputs_of(x), unpack(h0), LinearAttentionForm::parallel, 1));
          },
      .make_inputs =
          [](int64_t T, Generator& gen) {
            return std::vector<forms::Input>{{"q", randn({kB, kH, T, kDk}, gen, DType::f64), 2},
                                             {"k", randn({kB, kH, T, kDk}, gen, DType::f64), 2},
                                             {"v", randn({kB, kH, T, kDv}, gen, DType::f64), 2},
                                             {"log_i", randn({kB, kH, T}, gen, DType::f64) * 2.0, 2},
                                             {"log_f", log_sigmoid(randn({kB, kH, T}, gen, DType::f64) + 2.0), 2}};
          },
      .state_shape =
          [](const std::vector<forms::Input>&) {
            return Shape{kB, kH, kDk * (kDv + 1) + 1};
          },
      .out_time_dim = 2,
      .make_gate =
          [](forms::Gate gate, int64_t chunk, std::vector<forms::Input> in, Generator& gen) {
            const Shape s = in[3].value.shape();
            in[3].value = extreme_log_i(s, gen);
            in[4].value = gate == forms::Gate::unit_decay ? forms::unit_log_decay(s)
                                                          : forms::steep_log_decay(s, 2, chunk, -1000, gen);
            return in;
          },
  };
}

// ---- mLSTM cell: the paper's unstabilised formula, plain doubles ---------------------------
// From the zero memory: C_t = f C + e^{ĩ} k^T v, n_t = f n + e^{ĩ} k, h̃_t = q C / max(|q n|, 1),
// f = e^{λ}. Returns h̃ [B, H, T, Dv] flattened, and C_T, n_T in [B, H, Dk, Dv + 1] order.
struct Plain {
  std::vector<double> h, S;
};
Plain mlstm_unstabilised(const nn::MLstmInputs& in) {
  const int64_t B = in.q.size(0), H = in.q.size(1), T = in.q.size(2), Dk = in.q.size(3), Dv = in.v.size(3);
  auto q = in.q.to_vector<double>(), k = in.k.to_vector<double>(), v = in.v.to_vector<double>();
  auto li = in.log_i.to_vector<double>(), lf = in.log_f.to_vector<double>();
  Plain p{std::vector<double>(size_t(B * H * T * Dv)), std::vector<double>(size_t(B * H * Dk * (Dv + 1)), 0.0)};
  for (int64_t bh = 0; bh < B * H; ++bh) {
    double* S = &p.S[size_t(bh * Dk * (Dv + 1))];  // [C | n]
    for (int64_t t = 0; t < T; ++t) {
      const int64_t bt = bh * T + t;
      const double f = std::exp(lf[size_t(bt)]), i = std::exp(li[size_t(bt)]);
      for (int64_t a = 0; a < Dk; ++a)
        for (int64_t j = 0; j <= Dv; ++j)
          S[a * (Dv + 1) + j] =
              f * S[a * (Dv + 1) + j] + i * k[size_t(bt * Dk + a)] * (j < Dv ? v[size_t(bt * Dv + j)] : 1.0);
      double den = 0;
      for (int64_t a = 0; a < Dk; ++a) den += q[size_t(bt * Dk + a)] * S[a * (Dv + 1) + Dv];
      for (int64_t j = 0; j < Dv; ++j) {
        double num = 0;
        for (int64_t a = 0; a < Dk; ++a) num += q[size_t(bt * Dk + a)] * S[a * (Dv + 1) + j];
        p.h[size_t(bt * Dv + j)] = num / std::max(std::abs(den), 1.0);
      }
    }
  }
  return p;
}

// max relative error of a form against the plain formula: h̃, and C_T = C̄_T e^{m_T}.
double vs_unstabilised(const nn::MLstmOutput& r, const Plain& p) {
  const int64_t B = r.h.size(0), H = r.h.size(1);
  Tensor S = r.memory.S * exp(r.memory.m).view({B, H, 1, 1});
  return std::max(rel_max(r.h, from_vector(p.h, r.h.shape())), rel_max(S, from_vector(p.S, S.shape())));
}

// ---- mixers --------------------------------------------------------------------------------
constexpr int64_t kT = 29, kC = 16;

std::shared_ptr<nn::Mixer> make(const std::string& id, const std::string& extra = "", int64_t dim = kC,
                                int64_t heads = 2) {
  Generator gen(3);
  nn::Config c = nn::Config::parse(cat_str("{", extra, "}"));
  auto m = zoo::registry().make_mixer(id, nn::ModelDims{.dim = dim, .heads = heads, .context = 64, .depth = 1}, c, gen);
  m->to(DType::f64);
  return m;
}

using testing::Run;
using testing::run;

// |prefill of `prefill` tokens, then token by token| against the whole forward.
double decode_vs_forward(nn::Mixer& m, const Tensor& x, int64_t prefill) {
  NoGradGuard no_grad;
  Tensor ref = m.forward(x, {});
  auto state = m.make_state(x.size(0), x.size(1), DType::f64);
  std::vector<Tensor> outs{m.forward(x.narrow(1, 0, prefill), {.start = 0}, state.get())};
  for (int64_t t = prefill; t < x.size(1); ++t) outs.push_back(m.forward(x.narrow(1, t, 1), {.start = t}, state.get()));
  return rel_max(cat(outs, 1), ref);
}
}  // namespace

TZ_PROOF(xlstm_mlstm,
         "stabilised chunked and parallel forms == recurrent loop (out, C, n, m, grads, extreme gates), "
         "== unstabilised formula, decode == forward, f64 1e-10") {
  // 1. forms_agree: chunked at c in {1, 2, 3, 8, 16, 37} and the materialised parallel form
  //    against the loop; then the kernel's recurrent form (the decode step) likewise.
  double worst = 0;
  for (LinearAttentionForm f : {LinearAttentionForm::chunked, LinearAttentionForm::recurrent}) {
    forms::FormsOptions o;
    if (f == LinearAttentionForm::recurrent) o.chunks = {1};
    forms::FormsResult r = forms::forms_agree(mlstm_forms(f), o);
    INFO(r.report());
    CHECK_MESSAGE(r.ok, r.failure_report());
    CHECK(r.skipped.empty());
    CHECK(r.lines.size() > 100);
    worst = std::max(worst, r.max_error);
  }
  // 2. the stabiliser changes nothing: every form equals the paper's unstabilised formula
  //    (finite here: ĩ ~ N(0, 4)), outputs and the memory C_T = C̄_T e^{m_T}.
  Generator gen(11);
  const int64_t T = 23;
  nn::MLstmInputs in{randn({kB, kH, T, kDk}, gen, DType::f64), randn({kB, kH, T, kDk}, gen, DType::f64),
                     randn({kB, kH, T, kDv}, gen, DType::f64), randn({kB, kH, T}, gen, DType::f64) * 2.0,
                     log_sigmoid(randn({kB, kH, T}, gen, DType::f64) * 2.0 + 1.0)};
  const Plain plain = mlstm_unstabilised(in);
  const nn::MLstmMemory zero = nn::mlstm_zero_memory(kB, kH, kDk, kDv, DType::f64);
  double unstab = rel_max(nn::mlstm_loop(in, zero).h, from_vector(plain.h, {kB, kH, T, kDv}));
  for (auto [f, c] : {std::pair{LinearAttentionForm::chunked, int64_t(5)},
                      {LinearAttentionForm::parallel, int64_t(1)},
                      {LinearAttentionForm::recurrent, int64_t(1)}}) {
    const double e = vs_unstabilised(nn::mlstm(in, zero, f, c), plain);
    INFO(linear_attention_form_name(f), ": ", e);
    CHECK(e < 1e-12);
    unstab = std::max(unstab, e);
  }
  // 3. ...and any other stabiliser gives the same output: the same memory written at m_0 = 30
  //    (C̄_0 e^{-30}) instead of 0 continues identically.
  nn::MLstmOutput first = nn::mlstm(in, zero, LinearAttentionForm::chunked, 4);
  nn::MLstmMemory shifted{first.memory.S * std::exp(-30.0), first.memory.m + 30.0};
  const double shift = rel_max(nn::mlstm(in, shifted, LinearAttentionForm::chunked, 4).h,
                               nn::mlstm(in, first.memory, LinearAttentionForm::chunked, 4).h);
  CHECK(shift < 1e-12);
  // 4. past overflow the formula fails and the stabilised form does not.
  in.log_i = extreme_log_i(in.log_i.shape(), gen);
  const Plain overflow = mlstm_unstabilised(in);
  CHECK_FALSE(std::all_of(overflow.h.begin(), overflow.h.end(), [](double v) { return std::isfinite(v); }));
  CHECK(all_finite(nn::mlstm(in, zero, LinearAttentionForm::chunked, 4).h));
  // 5. the mixer: every linear_form and chunk gives the same output and dL/dx, and decoding
  //    after a chunked prefill equals the whole forward.
  Generator gx(5);
  Tensor x = randn({kB, kT, kC}, gx, DType::f64), w = randn({kB, kT, kC}, gx, DType::f64);
  Run ref = run(*make("xlstm_mlstm", R"("linear_form": "recurrent")"), x, w);
  double mixer = 0;
  for (const char* extra :
       {R"("linear_form": "parallel")", R"("linear_form": "chunked", "linear_chunk": 1)",
        R"("linear_form": "chunked", "linear_chunk": 8)", R"("linear_form": "chunked", "linear_chunk": 29)"}) {
    Run r = run(*make("xlstm_mlstm", extra), x, w);
    const double e = testing::rel_max(r, ref);
    INFO(extra, ": ", e);
    CHECK(e < 1e-10);
    mixer = std::max(mixer, e);
  }
  const double decode = decode_vs_forward(*make("xlstm_mlstm", R"("linear_chunk": 4)"), x, 11);
  CHECK(decode < 1e-10);
  MESSAGE("forms_agree ", worst, ", vs unstabilised ", unstab, ", m_0 shift ", shift, ", mixer forms ", mixer,
          ", decode ", decode);
  TZ_PROOF_NUMBER("max rel. error, stabilised forms vs loop and vs unstabilised", std::max(worst, unstab));
}

TZ_PROOF(xlstm_slstm,
         "stabilised == unstabilised (f64, outputs and dL/dx), decode token by token == unrolled forward, "
         "f64 gradcheck through the recurrence") {
  Generator gen(5);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64), w = randn({kB, kT, kC / 2, 2}, gen, DType::f64);
  // The cell's h [B, H, T, D] and dL/dx, L = <w, h>, from the zero memory.
  auto cell_run = [&](nn::SLstm& s, bool stabilised) {
    Tensor xg = x.detach().clone().requires_grad_();
    nn::SLstmMemory mem = nn::slstm_zero_memory(kB, 2, kC / 2, DType::f64);
    Tensor h = s.cell(xg, mem, stabilised);
    sum(h * w.view({kB, kT, 2, kC / 2}).transpose(1, 2)).backward();
    return Run{h.detach(), xg.grad()};
  };
  // 1. stabilised == unstabilised, with the input gates' bias shifted by 0 and +-40 (e^{±40}
  //    still finite in f64, while the stabilised exponents stay <= 0).
  double worst = 0;
  for (double shift : {0.0, 40.0, -40.0, 800.0}) {
    auto m = make("xlstm_slstm");
    auto* s = dynamic_cast<nn::SLstm*>(m.get());
    REQUIRE(s);
    {
      NoGradGuard no_grad;
      Tensor bi = s->w_proj->bias.view({2, 4, kC / 2}).narrow(1, 1, 1);
      core::copy_(bi, bi + shift);
    }
    Run st = cell_run(*s, true), un = cell_run(*s, false);
    CHECK(all_finite(st.y));
    CHECK(all_finite(st.dx));
    if (shift > 700) {  // e^{ĩ} overflows: the plain formula gives inf / inf, the stabilised one does not
      CHECK_FALSE(all_finite(un.y));
      continue;
    }
    const double e = testing::rel_max(st, un);
    INFO("i bias shifted by ", shift, ": ", e);
    CHECK(e < 1e-12);
    worst = std::max(worst, e);
  }
  // 2. decoding from the zero state token by token (and after a prefill of 11) equals the
  //    unrolled forward.
  auto m = make("xlstm_slstm");
  const double decode = std::max(decode_vs_forward(*m, x, 1), decode_vs_forward(*m, x, 11));
  CHECK(decode < 1e-12);
  // 3. gradients through the recurrence (R h_{t-1} in every gate): f64 central differences on
  //    a tiny mixer (C = 4, H = 2), of x, R and W.
  auto tiny = make("xlstm_slstm", "", 4, 2);
  auto* s = dynamic_cast<nn::SLstm*>(tiny.get());
  REQUIRE(s);
  Generator gt(9);
  Tensor xt = randn({1, 6, 4}, gt, DType::f64).requires_grad_();
  GradcheckResult g = gradcheck([&](const std::vector<Tensor>& v) { return s->forward(v[0], {}); },
                                {xt, s->R, s->w_proj->weight, s->w_proj->bias}, {.names = {"x", "R", "W", "b"}});
  INFO(g.report);
  CHECK(g.ok);
  CHECK(g.tensors.size() == 4);
  MESSAGE("stabilised vs unstabilised ", worst, ", decode ", decode, ", gradcheck max abs error ", g.max_abs_error);
  TZ_PROOF_NUMBER("max rel. error, stabilised vs unstabilised", worst);
}

// ---- Mogrifier LSTM -------------------------------------------------------------------------
namespace {
// The Mogrifier LSTM in plain doubles from the mixer's parameters (y = x W^T + b layout):
// r rounds of x^i = 2σ(Q^i h) ⊙ x (odd i), h^i = 2σ(R^i x) ⊙ h (even i), then the textbook
// LSTM cell with gates i, f, g, o. With r = 0 this is the plain LSTM. x [B, T, C] -> h.
std::vector<double> mogrifier_ref(const nn::MogrifierLSTM& m, const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), C = m.options.dim, k = m.options.rank, r = m.options.rounds;
  auto X = x.to_vector<double>(), W = m.w_proj->weight.to_vector<double>(), b = m.w_proj->bias.to_vector<double>();
  auto U = m.u_proj->weight.to_vector<double>();
  auto matvec = [](const std::vector<double>& M, const std::vector<double>& v, int64_t rows, int64_t cols) {
    std::vector<double> y(size_t(rows), 0.0);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) y[size_t(i)] += M[size_t(i * cols + j)] * v[size_t(j)];
    return y;
  };
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  std::vector<double> out(size_t(B * T * C));
  for (int64_t bi = 0; bi < B; ++bi) {
    std::vector<double> h(size_t(C), 0.0), c(size_t(C), 0.0);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> xt(X.begin() + (bi * T + t) * C, X.begin() + (bi * T + t + 1) * C), hp = h;
      for (int64_t i = 1; i <= r; ++i) {
        auto D = m.down[size_t(i - 1)]->weight.to_vector<double>(),
             Up = m.up[size_t(i - 1)]->weight.to_vector<double>();
        std::vector<double>& target = i % 2 ? xt : hp;
        const std::vector<double> gate = matvec(Up, matvec(D, i % 2 ? hp : xt, k, C), C, k);
        for (int64_t j = 0; j < C; ++j) target[size_t(j)] *= 2 * sig(gate[size_t(j)]);
      }
      std::vector<double> g = matvec(W, xt, 4 * C, C), gu = matvec(U, hp, 4 * C, C);
      for (int64_t j = 0; j < 4 * C; ++j) g[size_t(j)] += gu[size_t(j)] + b[size_t(j)];
      for (int64_t j = 0; j < C; ++j) {
        c[size_t(j)] = sig(g[size_t(C + j)]) * c[size_t(j)] + sig(g[size_t(j)]) * std::tanh(g[size_t(2 * C + j)]);
        h[size_t(j)] = sig(g[size_t(3 * C + j)]) * std::tanh(c[size_t(j)]);
        out[size_t((bi * T + t) * C + j)] = h[size_t(j)];
      }
    }
  }
  return out;
}

// mogrifier_lstm (dim 16) with `rounds`, every parameter redrawn N(0, 0.5^2) so that the
// gates 2σ(.) are far from 1.
std::shared_ptr<nn::MogrifierLSTM> make_mogrifier(int64_t rounds) {
  auto m = std::dynamic_pointer_cast<nn::MogrifierLSTM>(
      make("mogrifier_lstm", cat_str(R"("mogrifier_rounds": )", rounds, R"(, "mogrifier_rank": 4)")));
  REQUIRE(m);
  Generator gen(17);
  NoGradGuard no_grad;
  for (auto& [name, p] : m->named_parameters()) core::copy_(p, randn(p.shape(), gen, DType::f64) * 0.5);
  return m;
}
}  // namespace

TZ_PROOF(mogrifier_lstm,
         "r = 0 equals the plain LSTM, r = 5 equals the rounds written out, step-by-step decoding "
         "equals the unrolled forward (f64)") {
  Generator gen(5);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64);
  NoGradGuard no_grad;
  double worst = 0;
  std::vector<double> outs[2];
  for (int64_t rounds : {0, 5}) {
    auto m = make_mogrifier(rounds);
    Tensor y = m->forward(x, {});
    outs[rounds ? 1 : 0] = y.to_vector<double>();
    const double e = rel_max(y, from_vector(mogrifier_ref(*m, x), y.shape()));
    INFO("rounds ", rounds, ": ", e);
    CHECK(e < 1e-13);
    worst = std::max(worst, e);
    const double decode = std::max(decode_vs_forward(*m, x, 1), decode_vs_forward(*m, x, 11));
    INFO("rounds ", rounds, " decode: ", decode);
    CHECK(decode < 1e-13);
    worst = std::max(worst, decode);
  }
  // The rounds matter: with the same LSTM weights r = 5 moves the output.
  double moved = 0;
  for (size_t i = 0; i < outs[0].size(); ++i) moved = std::max(moved, std::abs(outs[0][i] - outs[1][i]));
  CHECK(moved > 0.1);
  CHECK_THROWS_WITH(make("mogrifier_lstm", R"("mogrifier_rank": 17)"), doctest::Contains("mogrifier_rank must be in"));
  CHECK_THROWS_WITH(make("mogrifier_lstm", R"("mogrifier_rounds": -1)"),
                    doctest::Contains("mogrifier_rounds must be >= 0"));
  MESSAGE("max rel. error vs the plain-double LSTM / rounds and of decoding ", worst, "; r = 5 moves h by ", moved);
  TZ_PROOF_NUMBER("max rel. error vs the plain-double LSTM (r = 0) and rounds (r = 5)", worst);
}
