// Proofs of the feature-map attentions (nn/linear_rnn/feature_maps.h, feature_attention.h):
// the random features estimate the kernel they claim with an error falling like 1/√m
// (Performer: softmax kernel; RFA: Gaussian kernel; the table is printed and the log-log
// slope asserted), every mixer's forms agree (recurrent == chunked at chunks 1, 3, 8, T ==
// parallel == the masked quadratic form written out, f64, outputs and dL/dx) and decoding
// equals the forward; ReBased's kernel is non-negative; PolySketch is exact when the sketch
// has d^(p/2) orthonormal columns; PermuteFormer's scores are invariant to a global shift;
// Hedgehog's features, distilled on a small batch, mimic softmax rows on a held-out batch;
// DiJiang's quasi-Monte-Carlo frequencies estimate exp(q.k) with a smaller error than
// FAVOR+'s independent draws at every m.
#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/linear_rnn/feature_attention.h"
#include "nn/linear_rnn/feature_maps.h"
#include "optim/adam.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;
using tz::testing::rel_max;

namespace {
constexpr int64_t kB = 2, kT = 29, kC = 16, kH = 2;

std::shared_ptr<nn::FeatureAttention> make(const std::string& id, const std::string& form, int64_t chunk,
                                           const std::string& extra = "") {
  Generator gen(3);
  nn::Config c = nn::Config::parse(
      cat_str(R"({"linear_form": ")", form, R"(", "linear_chunk": )", chunk, R"(, "feature_redraw": 0)", extra, "}"));
  auto m = zoo::registry().make_mixer(id, nn::ModelDims{.dim = kC, .heads = kH, .context = 64, .depth = 1}, c, gen);
  m->to(DType::f64);
  auto f = std::dynamic_pointer_cast<nn::FeatureAttention>(m);
  REQUIRE(f);
  return f;
}

struct Run {
  Tensor out, dx;
};
Run run(nn::Mixer& m, const Tensor& x0, const Tensor& w, const nn::MixerContext& ctx) {
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor y = m.forward(x, ctx);
  sum(y * w).backward();
  return {y.detach(), x.grad()};
}

// Forms (recurrent reference; parallel; chunked at 1, 3, 8, T), decode after a chunked
// prefill of 11, and the masked quadratic form written out: Y = (A ⊙ M) V / ((A ⊙ M) 1 + eps),
// A = φ(Q) φ(K)^T (no decay: the id's gate or position decay off). Worst relative error.
double forms_agree(const std::string& id, const std::string& extra = "", const nn::PositionScheme* pos = nullptr) {
  Generator gen(5);
  Tensor x = randn({kB, kT, kC}, gen, DType::f64), w = randn({kB, kT, kC}, gen, DType::f64);
  const nn::MixerContext ctx{.pos = pos};
  Run ref = run(*make(id, "recurrent", 1, extra), x, w, ctx);
  double worst = 0;
  auto note = [&](const std::string& what, double e) {
    INFO(id, " ", what, ": ", e);
    CHECK(e < 1e-10);
    worst = std::max(worst, e);
  };
  auto compare = [&](const std::string& form, int64_t chunk) {
    Run r = run(*make(id, form, chunk, extra), x, w, ctx);
    note(cat_str(form, " chunk ", chunk), std::max(rel_max(r.out, ref.out), rel_max(r.dx, ref.dx)));
  };
  compare("parallel", 1);
  for (int64_t c : {int64_t(1), int64_t(3), int64_t(8), kT}) compare("chunked", c);
  NoGradGuard no_grad;
  auto m = make(id, "chunked", 4, extra);
  auto state = m->make_state(kB, kT, DType::f64);
  std::vector<Tensor> outs{m->forward(x.narrow(1, 0, 11), {.start = 0, .pos = pos}, state.get())};
  for (int64_t t = 11; t < kT; ++t)
    outs.push_back(m->forward(x.narrow(1, t, 1), {.start = t, .pos = pos}, state.get()));
  note("prefill 11 + decode", rel_max(cat(outs, 1), ref.out));
  if (!m->gate_proj && !pos) {
    Tensor q = m->features(nn::split_heads(m->q_proj->forward(x), kH), true);
    Tensor k = m->features(nn::split_heads(m->k_proj->forward(x), kH), false);
    Tensor v = nn::split_heads(m->v_proj->forward(x), kH);
    Tensor A = tril(matmul(q, k.transpose(-1, -2)));
    Tensor y = matmul(A, v) / (sum(A, {3}, true) + 1e-6);
    note("masked quadratic form", rel_max(m->o_proj->forward(nn::merge_heads(y)), ref.out));
  }
  return worst;
}

// RMS relative error of φ(x).φ(y) against `kernel` over 24 pairs and 64 draws of W per m;
// prints the table and returns the least-squares slope of log error against log m.
double monte_carlo_slope(const char* what, const std::function<Tensor(Tensor, Generator&, int64_t)>& phi,
                         const std::function<double(const Tensor&, const Tensor&)>& kernel, const Tensor& xs,
                         const Tensor& ys, std::vector<double>* errors = nullptr) {
  const int64_t P = xs.size(0);
  std::vector<double> lm, le;
  std::printf("%s: m, RMS relative error of phi(x).phi(y), error * sqrt(m)\n", what);
  for (int64_t m : {16, 64, 256, 1024}) {
    double se = 0;
    for (uint64_t s = 0; s < 64; ++s) {
      Generator gen(100 + s);
      Tensor fx = phi(xs, gen, m);
      Generator gen2(100 + s);  // the same W for x and y
      Tensor fy = phi(ys, gen2, m);
      Tensor est = sum(fx * fy, {1});
      for (int64_t p = 0; p < P; ++p) {
        const double want = kernel(xs.select(0, p), ys.select(0, p));
        se += std::pow((est.at({p}) - want) / want, 2);
      }
    }
    const double e = std::sqrt(se / double(64 * P));
    std::printf("  %5lld  %.5f  %.3f\n", static_cast<long long>(m), e, e * std::sqrt(double(m)));
    lm.push_back(std::log(double(m)));
    le.push_back(std::log(e));
    if (errors) errors->push_back(e);
  }
  const double mx = (lm[0] + lm[1] + lm[2] + lm[3]) / 4, my = (le[0] + le[1] + le[2] + le[3]) / 4;
  double num = 0, den = 0;
  for (size_t i = 0; i < 4; ++i) {
    num += (lm[i] - mx) * (le[i] - my);
    den += (lm[i] - mx) * (lm[i] - mx);
  }
  return num / den;
}
}  // namespace

TZ_PROOF(performer, "FAVOR+ estimates exp(q.k) with error ~ 1/sqrt(m), forms == masked quadratic, seeded redraw") {
  constexpr int64_t d = 8;
  Generator gen(1);
  Tensor xs = randn({24, d}, gen, DType::f64, 0, 0.3), ys = randn({24, d}, gen, DType::f64, 0, 0.3);
  const double slope = monte_carlo_slope(
      "performer (softmax kernel exp(x.y))",
      [](Tensor x, Generator& g, int64_t m) {
        return nn::favor_features(x, nn::orthogonal_random_features(m, d, g, DType::f64));
      },
      [](const Tensor& x, const Tensor& y) { return std::exp(sum(x * y).item()); }, xs, ys);
  MESSAGE("performer: slope of log error against log m = ", slope);
  CHECK(slope > -0.65);
  CHECK(slope < -0.35);
  // The rows of a draw: each block of d rows is orthogonal.
  Tensor w = nn::orthogonal_random_features(2 * d, d, gen, DType::f64);
  Tensor g = matmul(w.narrow(0, 0, d), w.narrow(0, 0, d).t());
  double off = 0;
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j)
      if (i != j) off = std::max(off, std::abs(g.at({i, j})));
  CHECK(off < 1e-12);
  // Redrawing: every 3rd training forward, none in eval; the same seed draws the same W.
  auto a = make("performer", "chunked", 8, R"(, "feature_count": 16)");
  auto b = make("performer", "chunked", 8, R"(, "feature_count": 16)");
  a->options.redraw = b->options.redraw = 3;
  Tensor w0 = a->random.clone();
  Tensor x = randn({1, 5, kC}, gen, DType::f64);
  {
    NoGradGuard no_grad;
    a->eval();
    for (int i = 0; i < 4; ++i) a->forward(x, {});
    CHECK(a->redraws() == 0);
    a->train();
    for (int i = 0; i < 3; ++i) a->forward(x, {}), b->forward(x, {});
    CHECK(a->redraws() == 1);
    CHECK(rel_max(a->random, w0) > 0.1);
    CHECK(rel_max(a->random, b->random) == 0.0);
  }
  const double e = forms_agree("performer");
  TZ_PROOF_NUMBER("1/sqrt(m) slope", slope);
  MESSAGE("performer: max rel. error over forms, decode and the quadratic form = ", e);
}

TZ_PROOF(rfa, "E[phi(x).phi(y)] = exp(-|x-y|^2/2) with error ~ 1/sqrt(m), forms agree (gated), quadratic form") {
  constexpr int64_t d = 8;
  Generator gen(2);
  auto unit = [](const Tensor& t) { return t / sqrt(sum(t * t, {1}, true)); };
  Tensor xs = unit(randn({24, d}, gen, DType::f64)), ys = unit(randn({24, d}, gen, DType::f64));
  const double slope = monte_carlo_slope(
      "rfa (Gaussian kernel exp(-|x-y|^2/2), sigma 1)",
      [](Tensor x, Generator& g, int64_t m) {
        return nn::trig_features(x, randn({m, d}, g, DType::f64));
      },
      [](const Tensor& x, const Tensor& y) { return std::exp(-0.5 * sum((x - y) * (x - y)).item()); }, xs, ys);
  MESSAGE("rfa: slope of log error against log m = ", slope);
  CHECK(slope > -0.65);
  CHECK(slope < -0.35);
  const double e = std::max(forms_agree("rfa"), forms_agree("rfa", R"(, "rfa_gate": false)"));
  TZ_PROOF_NUMBER("1/sqrt(m) slope", slope);
  MESSAGE("rfa: max rel. error over forms, decode and the quadratic form = ", e);
}

TZ_PROOF(rebased, "kernel values (g LN(q) + b . g LN(k) + b)^2 >= 0, recurrent == chunked == quadratic form") {
  Generator gen(4);
  Tensor gamma = randn({kH, 8}, gen, DType::f64), beta = randn({kH, 8}, gen, DType::f64);
  Tensor q = randn({3, kH, 40, 8}, gen, DType::f64, 0, 2), k = randn({3, kH, 40, 8}, gen, DType::f64, 0, 2);
  Tensor s = matmul(nn::rebased_features(q, gamma, beta), nn::rebased_features(k, gamma, beta).transpose(-1, -2));
  Tensor yq = layer_norm(q, Tensor(), Tensor(), 1e-5) * gamma.unsqueeze(1) + beta.unsqueeze(1);
  Tensor yk = layer_norm(k, Tensor(), Tensor(), 1e-5) * gamma.unsqueeze(1) + beta.unsqueeze(1);
  Tensor direct = pow_scalar(matmul(yq, yk.transpose(-1, -2)), 2.0);
  double lo = INFINITY;
  for (double v : s.to_vector<double>()) lo = std::min(lo, v);
  const double e_sq = rel_max(s, direct);
  MESSAGE("rebased: smallest of ", s.numel(), " kernel values = ", lo, "; vs (y_q . y_k)^2 written out: ", e_sq);
  CHECK(lo >= 0);
  CHECK(e_sq < 1e-12);
  // Based's Taylor map: 1 + q.k + (q.k)^2 / 2.
  Tensor t = sum(nn::taylor_features(q) * nn::taylor_features(k), {3});
  Tensor qk = sum(q * k, {3});
  CHECK(rel_max(t, 1.0 + qk + qk * qk * 0.5) < 1e-12);
  const double e = forms_agree("rebased");
  TZ_PROOF_NUMBER("min kernel value", lo);
  MESSAGE("rebased: max rel. error over forms, decode and the quadratic form = ", e);
}

TZ_PROOF(polysketchformer, "exact (q.k)^p when the sketch has d^(p/2) orthonormal columns, >= 0, forms agree") {
  Generator gen(6);
  constexpr int64_t d = 3;
  Tensor q = randn({50, d}, gen, DType::f64), k = randn({50, d}, gen, DType::f64);
  Tensor want = pow_scalar(sum(q * k, {1}), 4.0);
  auto err = [&](int64_t r) {
    Tensor S = nn::polynomial_sketch(r, d * d, gen, DType::f64);
    Tensor got = sum(nn::polysketch_features(q, S, 2) * nn::polysketch_features(k, S, 2), {1});
    double lo = INFINITY;
    for (double v : got.to_vector<double>()) lo = std::min(lo, v);
    CHECK(lo >= 0);
    return rel_max(got, want);
  };
  const double exact = std::max(err(9), err(12)), sketched = err(4);
  MESSAGE("polysketch p = 4, d = 3: r = 9, 12 (>= d^2) max rel. error ", exact, "; r = 4 (< d^2) ", sketched);
  CHECK(exact < 1e-12);
  CHECK(sketched > 1e-3);  // a smaller sketch is an estimate, not exact
  const double e = forms_agree("polysketchformer", R"(, "polysketch_size": 4)");
  TZ_PROOF_NUMBER("max rel. error at r = d^(p/2)", exact);
  MESSAGE("polysketchformer: max rel. error over forms, decode and the quadratic form = ", e);
}

TZ_PROOF(permuteformer, "scores phi'(q_i).phi'(k_j) invariant to a global position shift, forms agree, decode") {
  auto m = make("performer", "chunked", 8, R"(, "feature_count": 12)");
  Generator gen(8);
  Tensor x = randn({1, 9, kC}, gen, DType::f64);
  double shift = 0, out_shift = 0;
  nn::PermutePositions pos(0.9);
  {
    NoGradGuard no_grad;
    Tensor q = m->features(nn::split_heads(m->q_proj->forward(x), kH), true);
    Tensor k = m->features(nn::split_heads(m->k_proj->forward(x), kH), false);
    auto scores = [&](int64_t start) {
      return matmul(nn::permute_by_position(q, m->permutations, start),
                    nn::permute_by_position(k, m->permutations, start).transpose(-1, -2));
    };
    shift = rel_max(scores(37), scores(0));
    const double moved = rel_max(scores(0), matmul(q, k.transpose(-1, -2)));  // the permutation is not the identity
    MESSAGE("permuteformer: scores at start 37 vs 0: ", shift, "; permuted vs plain scores: ", moved);
    CHECK(shift < 1e-14);
    CHECK(moved > 1e-3);
    // The whole mixer with decay r = 0.9: the same tokens at positions 0.. and 37.. give the same output.
    out_shift = rel_max(m->forward(x, {.start = 37, .pos = &pos}), m->forward(x, {.start = 0, .pos = &pos}));
    CHECK(out_shift < 1e-12);
  }
  const double e = forms_agree("performer", R"(, "feature_count": 12)", &pos);
  TZ_PROOF_NUMBER("score change under a shift of 37", shift);
  MESSAGE("permuteformer: output change under the shift ", out_shift, "; forms and decode ", e);
}

TZ_PROOF(hedgehog, "distilled on a small batch, KL to softmax rows on a held-out batch far below untrained") {
  constexpr int64_t d = 8, T = 16;
  Generator gen(10);
  // Teacher q, k: Gaussian tokens in a fixed random 2-D subspace (a structure a map can learn
  // from 32 sequences and carry to 8 held-out ones).
  Tensor mix = randn({2, d}, gen, DType::f64, 0, 0.5);
  auto batch = [&](int64_t B) {
    return std::make_pair(matmul(randn({B, 1, T, 2}, gen, DType::f64), mix),
                          matmul(randn({B, 1, T, 2}, gen, DType::f64), mix));
  };
  auto [qt, kt] = batch(32);
  auto [qh, kh] = batch(8);
  // n = 32 features per sign, W drawn small: the untrained map is near uniform.
  Tensor w = randn({1, d, 32}, gen, DType::f64, 0, 0.3).requires_grad_();
  Tensor b = zeros({1, 32}, DType::f64).requires_grad_();
  auto kl = [&](const Tensor& q, const Tensor& k) {
    return nn::softmax_mimicry_kl(q, k, nn::hedgehog_features(q, w, b), nn::hedgehog_features(k, w, b));
  };
  double before = 0;
  {
    NoGradGuard no_grad;
    before = kl(qh, kh).item();
  }
  optim::AdamW opt(std::vector<std::pair<std::string, Tensor>>{{"w", w}, {"b", b}}, {.lr = 0.05, .weight_decay = 0});
  double train_loss = 0;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    Tensor loss = kl(qt, kt);
    loss.backward();
    opt.step();
    train_loss = loss.item();
  }
  double after = 0;
  {
    NoGradGuard no_grad;
    after = kl(qh, kh).item();
  }
  MESSAGE("hedgehog: held-out KL(softmax || features) untrained ", before, ", after 60 steps ", after, " (train ",
          train_loss, ")");
  CHECK(after < 0.03);
  CHECK(after < 0.25 * before);
  const double e = forms_agree("hedgehog");
  TZ_PROOF_NUMBER("held-out KL after distillation", after);
  MESSAGE("hedgehog: max rel. error over forms, decode and the quadratic form = ", e);
}

TZ_PROOF(dijiang, "DCT + quasi-Monte-Carlo features: estimate -> exp(q.k), below FAVOR+'s error, forms agree") {
  // The chi quantiles against closed forms: chi_2: sqrt(-2 log(1 - p)); chi_1: erf(r / √2) = p.
  double qerr = 0;
  for (double p : {1e-6, 0.01, 0.3, 0.5, 0.9, 0.999999}) {
    qerr = std::max(qerr, std::abs(nn::chi_quantile(2, p) - std::sqrt(-2 * std::log1p(-p))));
    qerr = std::max(qerr, std::abs(std::erf(nn::chi_quantile(1, p) / std::sqrt(2.0)) - p));
  }
  MESSAGE("dijiang: chi quantile error against closed forms = ", qerr);
  CHECK(qerr < 1e-10);
  constexpr int64_t d = 8;
  Generator gen(1);
  // Each block of d rows is orthogonal; the lengths are one per stratum of chi_d.
  Tensor w = nn::dct_qmc_features(2 * d, d, gen, DType::f64);
  Tensor dirs = w / sqrt(sum(w * w, {1}, true));
  Tensor g = matmul(dirs.narrow(0, 0, d), dirs.narrow(0, 0, d).t());
  CHECK(rel_max(g, eye(d, DType::f64)) < 1e-12);
  Tensor xs = randn({24, d}, gen, DType::f64, 0, 0.3), ys = randn({24, d}, gen, DType::f64, 0, 0.3);
  auto softmax_kernel = [](const Tensor& x, const Tensor& y) { return std::exp(sum(x * y).item()); };
  std::vector<double> qmc, iid;
  const double slope = monte_carlo_slope(
      "dijiang (softmax kernel exp(x.y))",
      [](Tensor x, Generator& g, int64_t m) {
        return nn::favor_features(x, nn::dct_qmc_features(m, d, g, DType::f64));
      },
      softmax_kernel, xs, ys, &qmc);
  monte_carlo_slope(
      "performer, the same pairs",
      [](Tensor x, Generator& g, int64_t m) {
        return nn::favor_features(x, nn::orthogonal_random_features(m, d, g, DType::f64));
      },
      softmax_kernel, xs, ys, &iid);
  MESSAGE("dijiang: slope of log error against log m = ", slope);
  CHECK(slope < -0.35);
  // The quasi-Monte-Carlo lengths remove the radial part of the error; the directions' part
  // (dominant at large m for d = 8) remains, so the gain narrows as m grows.
  double mean_ratio = 0;
  for (size_t i = 0; i < qmc.size(); ++i) {
    INFO("m index ", i, ": dijiang ", qmc[i], ", performer ", iid[i]);
    CHECK(qmc[i] < iid[i]);
    mean_ratio += qmc[i] / iid[i] / double(qmc.size());
  }
  MESSAGE("dijiang: mean error ratio against FAVOR+ = ", mean_ratio);
  CHECK(mean_ratio < 0.95);
  const double e = forms_agree("dijiang", R"(, "feature_count": 24)");
  TZ_PROOF_NUMBER("RMS kernel error at m = 1024", qmc.back());
  TZ_PROOF_NUMBER("error ratio against FAVOR+", mean_ratio);
  MESSAGE("dijiang: max rel. error over forms, decode and the quadratic form = ", e);
}

TZ_PROOF(translational_equivariant_performer,
         "shifting the input shifts the output: exactly for the kernel, and for "
         "one draw up to a rotation of the random features") {
  constexpr int64_t P = 3, D = kC / kH, s = 37;
  const std::string extra = R"(, "feature_count": 24, "pos": "translational_equivariant_performer", "tep_pairs": 3)";
  Generator gen(12);
  nn::RelativeSinusoids rel(kH, P, gen);
  rel.to(DType::f64);
  auto m = make("performer", "chunked", 8, extra);
  Tensor x = randn({1, 11, kC}, gen, DType::f64);
  double kernel_shift = 0, draw_shift = 0, rotated = 0, gram = 0;
  {
    NoGradGuard no_grad;
    Tensor q = nn::split_heads(m->q_proj->forward(x), kH), k = nn::split_heads(m->k_proj->forward(x), kH);
    Tensor v = nn::split_heads(m->v_proj->forward(x), kH);
    // The kernel FAVOR+ estimates, exp(q~ . k~ / √D) under the causal mask, at positions start..
    auto exact = [&](int64_t start) {
      Tensor qa = cat({q, rel.query_part(start, 11, DType::f64).expand({1, kH, 11, 2 * P})}, 3);
      Tensor ka = cat({k, rel.key_part(start, 11, DType::f64).expand({1, kH, 11, 2 * P})}, 3);
      Tensor sc =
          matmul(qa, ka.transpose(-1, -2)) / std::sqrt(double(D)) - (1.0 - tril(ones({11, 11}, DType::f64))) * 1e30;
      return matmul(softmax(sc), v);
    };
    kernel_shift = rel_max(exact(s), exact(0));
    // One draw: the output at start s equals the output at start 0 with W's position columns
    // rotated by ω_p s (per pair: w_c cos + w_s sin, w_s cos - w_c sin).
    auto m2 = make("performer", "chunked", 8, extra);
    for (int64_t r = 0; r < m->random.size(0); ++r)
      for (int64_t p = 0; p < P; ++p) {
        const double a = double(s) * rel.freq.at({p});
        const double wc = m->random.at({r, D + p}), ws = m->random.at({r, D + P + p});
        m2->random.set({r, D + p}, wc * std::cos(a) + ws * std::sin(a));
        m2->random.set({r, D + P + p}, ws * std::cos(a) - wc * std::sin(a));
      }
    Tensor at_s = m->forward(x, {.start = s, .pos = &rel});
    rotated = rel_max(at_s, m2->forward(x, {.start = 0, .pos = &rel}));
    draw_shift = rel_max(at_s, m->forward(x, {.start = 0, .pos = &rel}));
    // The rotated draw is a draw of the same law: its rows keep their Gram matrix.
    gram = rel_max(matmul(m2->random, m2->random.t()), matmul(m->random, m->random.t()));
  }
  MESSAGE("tep: exact-kernel output, start 37 vs 0: ", kernel_shift,
          "; one draw at 37 vs the rotated draw at 0: ", rotated, " (vs the same draw at 0: ", draw_shift,
          "); Gram change ", gram);
  CHECK(kernel_shift < 1e-12);
  CHECK(rotated < 1e-12);
  CHECK(gram < 1e-12);
  CHECK(draw_shift > 1e-6);  // one draw alone is not exactly equivariant: the statement is in law
  const double e = forms_agree("performer", extra, &rel);
  TZ_PROOF_NUMBER("exact-kernel output change under a shift of 37", kernel_shift);
  MESSAGE("tep: forms and decode ", e);
}
