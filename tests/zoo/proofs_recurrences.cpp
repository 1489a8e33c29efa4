// Proofs of the elementwise recurrences and the byte-level Mamba:
//   matmul_free_lm  every BitLinear weight is ternary, and the product by an add/sub-only
//                   kernel equals the matmul path; the STE gradients; MLGRU's scan equals
//                   the sequential loop; decoding equals the forward (quantised, f64)
//   ternary_glu     the channel mixer, all three layers through the add/sub kernel
//   simple_recurrence_mlm  causal (and the bidirectional form is not); scan == loop;
//                   parameter count equal to the plain FFN's
//   token_shift_gpt logits_t independent of ids after t (both forms); shifted means and the
//                   discounted cumsum equal their definitions; decoding equals the forward
//   mambabyte       speculative greedy decoding equals the verifier's greedy decoding, with a
//                   draft that is the verifier, a small model trained on the same bytes and an
//                   untrained one
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/speculative.h"
#include "models/zoo.h"
#include "nn/ffn/simple_recurrence.h"
#include "nn/ffn/token_shift_gpt.h"
#include "nn/linear_rnn/matmul_free_lm.h"
#include "nn/ssm/mambabyte.h"
#include "optim/adam.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

namespace tz::testing {
namespace {

// Largest |fast - sequential| over the states and the gradients of x and of every parameter,
// for a mixer's scan inputs (chunk 4 against the plain loop of ops).
template <class M>
double scan_vs_loop(M& m, const Tensor& x, int64_t width) {
  Generator gen(5);
  Tensor w = randn({x.size(0), x.size(1), width}, gen, DType::f64);
  auto run = [&](bool fast) {
    m.zero_grad();
    x.zero_grad();
    auto in = m.scan_inputs(x);
    Tensor h = fast ? scan(in.a, in.b, Tensor(), {.chunk = 4}) : scan_composite(in.a, in.b);
    sum(h * w).backward();
    std::vector<Tensor> out{h.detach(), x.grad().clone()};
    for (const auto& [name, p] : m.named_parameters())
      if (p.grad().defined()) out.push_back(p.grad().clone());
    return out;
  };
  std::vector<Tensor> a = run(true), b = run(false);
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() >= 3);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, max_abs_diff(a[i], b[i]));
  return worst;
}

// Checks a BitLinear's weights are ternary; returns |forward - forward_addsub| / max |forward|.
double ternary_addsub_error(const nn::BitLinear& l, const Tensor& x, int64_t* nonzero = nullptr) {
  std::vector<double> t = l.ternary().to_vector<double>();
  int64_t counts[3] = {0, 0, 0};
  for (double v : t) {
    CHECK((v == -1 || v == 0 || v == 1));
    if (v == -1 || v == 0 || v == 1) ++counts[int(v) + 1];
  }
  CHECK(counts[0] > 0);  // all three values occur: the check is not vacuous
  CHECK(counts[1] > 0);
  CHECK(counts[2] > 0);
  if (nonzero) *nonzero += counts[0] + counts[2];
  NoGradGuard no_grad;
  Tensor y = l.forward(x), z = l.forward_addsub(x);
  std::vector<double> yv = y.to_vector<double>();
  double scale = 0;
  for (double v : yv) scale = std::max(scale, std::abs(v));
  return max_abs_diff(y, z) / scale;
}

}  // namespace

TZ_PROOF(matmul_free_lm, "ternary weights, add/sub product == matmul, STE gradients, scan == loop, decode == forward") {
  Generator gen(21);
  nn::BitLinear l({.in = 24, .out = 10, .quantize = true, .init_std = 0.2}, gen);
  l.to(DType::f64);
  Tensor x = randn({2, 7, 24}, gen, DType::f64).requires_grad_();
  const double addsub = ternary_addsub_error(l, x);
  CHECK(addsub <= 1e-12);
  // The STE: dL/dW is the gradient w.r.t. the dequantised W~ taken as a leaf, dL/dx the
  // gradient through the norm with the quantisers taken as the identity.
  Tensor w = randn({2, 7, 10}, gen, DType::f64);
  sum(l.forward(x) * w).backward();
  Tensor gw = l.weight.grad().clone(), gx = x.grad().clone();
  Tensor w_q = (l.ternary() * l.beta()).requires_grad_();
  Tensor x2 = x.detach().clone().requires_grad_();
  Tensor u = rms_norm(x2, Tensor(), 1e-6);
  Tensor gamma = clamp(max(abs(u.detach()), -1, true), 1e-5, INFINITY);
  std::vector<double> qv = (u.detach() * 127.0 / gamma).to_vector<double>();
  for (double& v : qv) v = std::nearbyint(v);
  Tensor u_q = u + (from_vector(qv, u.shape()) * gamma / 127.0 - u).detach();
  sum(linear(u_q, w_q) * w).backward();
  const double ste = std::max(max_abs_diff(gw, w_q.grad()), max_abs_diff(gx, x2.grad()));
  CHECK(ste <= 1e-12);
  CHECK(max_abs_diff(gw, zeros_like(gw)) > 1e-3);  // the STE passes a gradient a rounding would stop

  nn::Mlgru m({.dim = 12, .quantize = true, .lower_bound = 0.25}, gen);
  m.to(DType::f64);
  double mixer_addsub = 0;
  int64_t nonzero = 0;
  Tensor xm = randn({2, 19, 12}, gen, DType::f64).requires_grad_();
  for (auto* p : {m.f_proj.get(), m.c_proj.get(), m.g_proj.get(), m.out_proj.get()})
    mixer_addsub = std::max(mixer_addsub, ternary_addsub_error(*p, xm, &nonzero));
  CHECK(mixer_addsub <= 1e-12);
  const double scan_err = scan_vs_loop(m, xm, 12);
  CHECK(scan_err <= 1e-10);
  const double step_err =
      lm_step_vs_forward(R"({"mixer": "matmul_free_lm", "ffn": "ternary_glu", "norm": "rmsnorm"})", 12);
  CHECK(step_err <= 1e-9);
  MESSAGE("add/sub vs matmul (relative) ", addsub, ", MLGRU projections ", mixer_addsub, " (", nonzero,
          " nonzero ternary weights); STE gradients vs leaf W~ ", ste, "; scan vs loop ", scan_err,
          "; step vs forward ", step_err);
  TZ_PROOF_NUMBER("add/sub vs matmul product (relative)", std::max(addsub, mixer_addsub));
}

TZ_PROOF(ternary_glu, "all three layers ternary, the GLU through the add/sub kernel == its matmul forward") {
  Generator gen(22);
  nn::TernaryGlu g({.dim = 12, .hidden = 32, .quantize = true}, gen);
  g.to(DType::f64);
  NoGradGuard no_grad;
  Tensor x = randn({2, 9, 12}, gen, DType::f64);
  double worst = 0;
  worst = std::max(worst, ternary_addsub_error(*g.gate, x));
  worst = std::max(worst, ternary_addsub_error(*g.up, x));
  Tensor hidden = silu(g.gate->forward_addsub(x)) * g.up->forward_addsub(x);
  worst = std::max(worst, ternary_addsub_error(*g.down, hidden));
  const double whole = max_abs_diff(g.forward(x), g.down->forward_addsub(hidden));
  CHECK(worst <= 1e-12);
  CHECK(whole <= 1e-12);
  MESSAGE("per layer (relative) ", worst, ", whole GLU ", whole);
  TZ_PROOF_NUMBER("add/sub vs matmul (relative)", worst);
}

TZ_PROOF(simple_recurrence_mlm, "forward-only form causal, scan == sequential, parameter count == plain FFN") {
  Generator gen(23);
  const nn::ModelDims dims{.dim = 12, .heads = 1, .context = 64, .depth = 2, .layer = 0};
  nn::SimpleRecurrenceFfn m(nn::simple_recurrence_options(dims, nn::Config::parse(R"({"ffn_mult": 3})")), gen);
  m.to(DType::f64);
  CHECK(m.options.width == 24);  // R = 2 F / 3, F = 36
  Tensor x = randn({2, 17, 12}, gen, DType::f64).requires_grad_();
  const double scan_err = scan_vs_loop(m, x, 24);
  CHECK(scan_err <= 1e-10);
  // Causal: changing x after t leaves y up to t unchanged; the bidirectional form moves.
  nn::ModelDims bidir = dims;
  bidir.causal = false;
  nn::SimpleRecurrenceFfn both(nn::simple_recurrence_options(bidir, nn::Config::parse(R"({"ffn_mult": 3})")), gen);
  both.to(DType::f64);
  NoGradGuard no_grad;
  double leak = 0, moved = 0, bidir_leak = 0;
  for (int64_t t : {0, 8, 15}) {
    Tensor x2 = cat({x.narrow(1, 0, t + 1), randn({2, 16 - t, 12}, gen, DType::f64)}, 1);
    Tensor y = m.forward(x, {}), y2 = m.forward(x2, {});
    leak = std::max(leak, max_abs_diff(y.narrow(1, 0, t + 1), y2.narrow(1, 0, t + 1)));
    moved = std::max(moved, max_abs_diff(y.narrow(1, t + 1, 1), y2.narrow(1, t + 1, 1)));
    bidir_leak = std::max(
        bidir_leak, max_abs_diff(both.forward(x, {}).narrow(1, 0, t + 1), both.forward(x2, {}).narrow(1, 0, t + 1)));
  }
  CHECK(leak == 0);
  CHECK(moved > 1e-6);
  CHECK(bidir_leak > 1e-6);
  // Parameter count: the same LM with the plain FFN (ffn_mult 3: F = 3 C) and with this one.
  auto count = [&](const char* extra) {
    Generator g(1);
    nn::Config c = nn::Config::parse(R"({"vocab": 16, "dim": 16, "depth": 2, "heads": 2, "context": 24,
                                         "ffn_mult": 3})");
    c.merge(nn::Config::parse(extra));
    return zoo::make_model(c, g)->num_parameters();
  };
  const char* plain = R"({"layout": "sfsf", "bias": false})";
  const char* recurrent =
      R"({"layout": "ssss", "bias": false, "mixer": ["vanilla_mha", "simple_recurrence_mlm", "vanilla_mha",
          "simple_recurrence_mlm"]})";
  const int64_t n_plain = count(plain), n_rec = count(recurrent);
  CHECK(n_plain == n_rec);
  const int64_t with_bias = count(R"({"layout": "ssss", "mixer": ["vanilla_mha", "simple_recurrence_mlm",
                                      "vanilla_mha", "simple_recurrence_mlm"]})") -
                            count(R"({"layout": "sfsf"})");
  CHECK(with_bias == 2 * 48 / 3);  // F / 3 more biases per layer (F = 48), depth 2
  const double step_err = lm_step_vs_forward(
      R"({"layout": "ssss", "mixer": ["vanilla_mha", "simple_recurrence_mlm", "vanilla_mha", "simple_recurrence_mlm"]})",
      12);
  CHECK(step_err <= 1e-9);
  MESSAGE("scan vs loop ", scan_err, "; causal leak ", leak, " (a later output moves ", moved, ", bidirectional leak ",
          bidir_leak, "); parameters ", n_plain, " plain vs ", n_rec, " recurrent (no biases), +", with_bias,
          " with biases; step vs forward ", step_err);
  TZ_PROOF_NUMBER("parameters (recurrent - plain FFN LM, no biases)", double(n_rec - n_plain));
}

TZ_PROOF(token_shift_gpt,
         "causal: logits_t independent of x_{>t}, discounted cumsum == recurrence, decode == forward") {
  Generator gen(24);
  // The discounted cumsum on the scan against h_t = gamma h_{t-1} + x_t, from h0.
  const double gamma = 0.9;
  Tensor x = randn({2, 13, 5}, gen, DType::f64), h0 = randn({2, 5}, gen, DType::f64);
  std::vector<double> xv = x.to_vector<double>(), hv = h0.to_vector<double>(), ref(xv.size());
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 13; ++t)
      for (int64_t j = 0; j < 5; ++j) {
        double& h = hv[size_t(b * 5 + j)];
        h = gamma * h + xv[size_t((b * 13 + t) * 5 + j)];
        ref[size_t((b * 13 + t) * 5 + j)] = h;
      }
  const double cumsum_err = max_abs_diff(nn::discounted_cumsum(x, gamma, h0), from_vector(ref, x.shape()));
  CHECK(cumsum_err <= 1e-12);
  // The shifted means against their definition: chunk c at t, the mean of g over the
  // positions t - 2^(c+1) < j <= t - 2^c, j >= 0; the last chunk g itself.
  nn::TokenShiftGpt m(nn::token_shift_gpt_options({.dim = 4, .heads = 1, .context = 16, .depth = 1},
                                                  nn::Config::parse(R"({"ffn_mult": 3})")),
                      gen);
  REQUIRE(m.options.shifts == 4);  // ceil(log2 16); gate width 6: chunks 1, 1, 1, 1 and 2 passed
  Tensor g = randn({1, 16, 6}, gen, DType::f64);
  std::vector<double> gv = g.to_vector<double>(), seg(gv.size(), 0);
  for (int64_t t = 0; t < 16; ++t) {
    for (int64_t c = 0; c < 4; ++c) {
      const int64_t w = int64_t(1) << c;
      double sum_window = 0, n_window = 0;
      for (int64_t j = t - 2 * w + 1; j <= t - w; ++j)
        if (j >= 0) sum_window += gv[size_t(j * 6 + c)], ++n_window;
      seg[size_t(t * 6 + c)] = n_window > 0 ? sum_window / n_window : 0;
    }
    for (int64_t j = 4; j < 6; ++j) seg[size_t(t * 6 + j)] = gv[size_t(t * 6 + j)];
  }
  const double segment_err = max_abs_diff(m.shifted_gate(g, 0, nullptr), from_vector(seg, g.shape()));
  CHECK(segment_err <= 1e-12);
  // Causal at the LM level: ids after t changed, logits up to t unchanged, a later one moves.
  double leak = 0, moved = INFINITY, step_err = 0;
  for (const char* form : {"{}", R"({"token_shift_gpt_gamma": 0.9})"}) {
    Generator g2(3);
    nn::Config c = nn::Config::parse(R"({"vocab": 11, "dim": 16, "depth": 2, "context": 16, "layout": "ss",
                                         "mixer": "token_shift_gpt", "pos": "none"})");
    c.merge(nn::Config::parse(form));
    auto lm = zoo::make_model(c, g2);
    lm->to(DType::f64);
    NoGradGuard no_grad;
    Tensor ids = randint(0, 11, {2, 16}, g2);
    Tensor y = lm->forward(ids);
    for (int64_t t : {0, 5, 9, 14}) {
      Tensor ids2 = cat({ids.narrow(1, 0, t + 1), randint(0, 11, {2, 15 - t}, g2)}, 1);
      Tensor y2 = lm->forward(ids2);
      leak = std::max(leak, max_abs_diff(y.narrow(1, 0, t + 1), y2.narrow(1, 0, t + 1)));
      moved = std::min(moved, max_abs_diff(y.narrow(1, t + 1, 15 - t), y2.narrow(1, t + 1, 15 - t)));
    }
    step_err = std::max(step_err, lm_step_vs_forward(std::string(R"({"layout": "ss", "mixer": "token_shift_gpt",
                                                                   "pos": "none", "token_shift_gpt_gamma": )") +
                                                         (std::string(form) == "{}" ? "0" : "0.9") + "}",
                                                     16));
  }
  CHECK(leak == 0);
  CHECK(moved > 1e-6);
  CHECK(step_err <= 1e-9);
  MESSAGE("discounted cumsum vs recurrence ", cumsum_err, ", shifted means vs definition ", segment_err,
          "; causal leak ", leak, " (later logits move >= ", moved, "); step vs forward ", step_err);
  TZ_PROOF_NUMBER("causal leak (max |logits_<=t change|)", leak);
}

TZ_PROOF(mambabyte,
         "speculative greedy decoding == the verifier's greedy decoding (same, trained and untrained small drafts)") {
  Generator gen(25);
  auto byte_model = [](int64_t dim, int64_t depth, uint64_t seed) {
    Generator g(seed);
    return zoo::make_model(nn::Config::parse(nn::mambabyte_config(dim, depth, 128)), g);
  };
  // Both models learn a short text (bytes) for a few steps, so that the draft's guesses can
  // be right; then f64.
  const std::string text = "the cat sat on the mat. the cat sat on the mat. ";
  std::vector<int64_t> bytes(text.begin(), text.end());
  const int64_t L = int64_t(bytes.size()) - 1;
  Tensor inputs = from_vector(std::vector<int64_t>(bytes.begin(), bytes.end() - 1), {1, L});
  Tensor targets = from_vector(std::vector<int64_t>(bytes.begin() + 1, bytes.end()), {1, L});
  auto train = [&](models::Model& m, int64_t steps) {
    optim::AdamW opt(m.named_parameters(), {.lr = 3e-2, .weight_decay = 0});
    double loss = 0;
    for (int64_t i = 0; i < steps; ++i) {
      opt.zero_grad();
      Tensor l = m.loss(inputs, targets);
      l.backward();
      opt.step();
      loss = l.item();
    }
    m.to(DType::f64);
    return loss;
  };
  auto verifier = byte_model(16, 2, 1), other = byte_model(8, 1, 2);
  REQUIRE(verifier->vocab() == 256);
  const double verifier_loss = train(*verifier, 30), draft_loss = train(*other, 30);
  MESSAGE("after 30 steps on the text: verifier loss ", verifier_loss, ", small draft loss ", draft_loss,
          " (ln 256 = 5.55 untrained)");
  CHECK(verifier_loss < 0.5);  // MambaByte trains on bytes
  CHECK(draft_loss < 2.0);
  auto untrained = byte_model(8, 1, 3);
  untrained->to(DType::f64);
  const std::vector<int64_t> prompt(bytes.begin(), bytes.begin() + 7);  // "the cat"
  const int64_t n = 48;
  const std::vector<int64_t> greedy = models::greedy_decode(*verifier, prompt, n);
  REQUIRE(int64_t(greedy.size()) == n);
  double worst_rate = 1;
  int64_t differing = 0;
  for (auto [name, draft] :
       {std::pair{"same", verifier}, std::pair{"trained small", other}, std::pair{"untrained small", untrained}}) {
    models::SpeculativeResult r =
        models::speculative_greedy(*verifier, *draft, prompt, {.max_new_tokens = n, .draft_tokens = 4});
    const std::string name_s(name);
    INFO("draft ", name_s);
    CHECK(r.tokens == greedy);
    for (size_t i = 0; i < greedy.size(); ++i) differing += i >= r.tokens.size() || r.tokens[i] != greedy[i];
    MESSAGE("draft ", name_s, ": acceptance ", r.acceptance_rate(), " (", r.accepted, "/", r.proposed, "), ",
            r.tokens_per_verifier_call(), " tokens per verifier call (", r.verify_calls, " verify + ", r.rollback_calls,
            " rollback forwards for ", r.tokens.size(), " tokens; greedy needs ", n, ")");
    if (std::string(name) == "same") {
      CHECK(r.acceptance_rate() == 1.0);
      CHECK(r.rollback_calls == 0);
    }
    if (name_s == "untrained small") {
      CHECK(r.acceptance_rate() < 0.5);  // mostly rejections: the rollback path runs
      CHECK(r.rollback_calls > 0);
    }
    worst_rate = std::min(worst_rate, r.acceptance_rate());
  }
  MESSAGE("lowest acceptance ", worst_rate);
  TZ_PROOF_NUMBER("tokens where speculative != greedy (3 drafts)", double(differing));
}

}  // namespace tz::testing
