// Proofs of the block-layout, residual and objective options of the zoo LM (models/lm.h,
// nn/residual/):
// rezero, gated_residual_gtrxl, no_bias_cramming, dropout_sites, token_shift,
// sandwich_transformer, macaron, universal_transformer, act, forgetful_causal_masking.
#include <cmath>
#include <limits>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/fcm.h"
#include "models/token_shift.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
#include "nn/position/absolute.h"
#include "nn/residual/gtrxl.h"
#include "optim/adam.h"
#include "optim/optim.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
const char* kBase = R"("vocab": 16, "dim": 16, "heads": 2, "context": 24)";

std::unique_ptr<models::LM> lm(const std::string& extra, uint64_t seed = 1) {
  Generator gen(seed);
  return zoo::make_lm(std::string("{") + kBase + (extra.empty() ? "" : ", " + extra) + "}", gen);
}

// Memorises one fixed batch; returns {first loss, last loss} (and the mean loss in *mean).
std::pair<double, double> train_fixed(models::LM& m, int steps, double lr, double* mean = nullptr) {
  Generator g(21);
  Tensor ids = randint(0, 16, {4, 16}, g), targets = randint(0, 16, {4, 16}, g);
  optim::AdamW opt(m.named_parameters(), {.lr = lr, .weight_decay = 0.0});
  double first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    Tensor l = m.loss(ids, targets);
    opt.zero_grad();
    l.backward();
    opt.step();
    if (s == 0) first = l.item();
    last = l.item();
    if (mean) *mean += last / steps;
  }
  return {first, last};
}

Tensor ids_of(uint64_t seed, int64_t B = 2, int64_t T = 12) {
  Generator g(seed);
  return randint(0, 16, {B, T}, g);
}
}  // namespace

TZ_PROOF(rezero, "every block is exactly the identity at init, depth 64 trains without warm-up") {
  auto m = lm(R"("depth": 8, "residual": "rezero")");
  CHECK(m->norm_f == nullptr);
  for (const auto& s : m->layers->at<models::Block>(0)->sublayers) CHECK(s.norm == nullptr);  // no norms at all
  m->eval();
  {
    NoGradGuard ng;
    Tensor ids = ids_of(1);
    // With α = 0 the logits are the embeddings times the tied head: the 8 blocks do nothing.
    Tensor direct = linear(m->embed(ids, 0), m->tok_emb->weight);
    double d = testing::max_abs_diff(m->forward(ids), direct);
    MESSAGE("rezero depth 8 at init: max |logits - emb W^T| = ", d);
    CHECK(d == 0.0);
  }
  // Depth 64, constant lr 1e-2 from step 0 (no warm-up): memorising a fixed batch, the loss
  // falls steadily and stays finite.
  auto deep = lm(R"("depth": 64, "residual": "rezero")", 2);
  auto [first, last] = train_fixed(*deep, 40, 1e-2);
  MESSAGE("rezero depth 64, no warm-up, 40 steps on a fixed batch: loss ", first, " -> ", last);
  TZ_PROOF_NUMBER("depth-64 loss last / first", last / first);
  CHECK(std::isfinite(last));
  CHECK(last < 0.5 * first);
}

TZ_PROOF(gated_residual_gtrxl, "gate matches its equations, large b_g makes the block ≈ identity at init") {
  Generator gen(4);
  const int64_t C = 16;
  nn::GRUGate gate(C, 2.0, gen);
  gate.to(DType::f64);
  Tensor x = randn({2, 5, C}, gen, DType::f64), y = randn({2, 5, C}, gen, DType::f64);
  {  // the formula, term by term
    Tensor r = sigmoid(matmul(y, gate.wr->weight.t()) + matmul(x, gate.ur->weight.t()));
    Tensor z = sigmoid(matmul(y, gate.wz->weight.t()) + matmul(x, gate.uz->weight.t()) - 2.0);
    Tensor hh = tanh(matmul(y, gate.wg->weight.t()) + matmul(r * x, gate.ug->weight.t()));
    CHECK(testing::max_abs_diff(gate.forward(x, y), (1.0 - z) * x + z * hh) < 1e-12);
    double zmean = mean(z).item();
    MESSAGE("b_g = 2: mean z = ", zmean, " (sigma(-2) = ", 1 / (1 + std::exp(2.0)), ")");
    CHECK(std::abs(zmean - 1 / (1 + std::exp(2.0))) < 0.02);
  }
  // Whole blocks at init: relative change |block(x) - x| / |x| shrinks as b_g grows.
  double prev = INFINITY;
  for (double bg : {0.0, 2.0, 8.0}) {
    auto m = lm(cat_str(R"("depth": 1, "residual": "gtrxl", "gtrxl_bias": )", bg), 5);
    m->to(DType::f64);
    m->eval();
    NoGradGuard ng;
    Tensor h = m->embed(ids_of(2), 0);
    Tensor out = m->layers->at<models::Block>(0)->forward(h, {});
    double rel = testing::rel_rms(out, h);
    MESSAGE("gtrxl b_g = ", bg, ": |block(x) - x| / |x| = ", rel);
    if (bg == 8.0) TZ_PROOF_NUMBER("|block(x) - x| / |x| at b_g 8", rel);
    CHECK(rel < prev);
    prev = rel;
    if (bg == 8.0) CHECK(rel < 1e-3);
  }
}

TZ_PROOF(no_bias_cramming, "parameter count drops by exactly the bias count, tiny-run loss close to the biased model") {
  auto with = lm(R"("depth": 2)", 7), without = lm(R"("depth": 2, "bias": false)", 7);
  int64_t bias_count = 0, n_bias_tensors = 0;
  for (auto& [name, t] : with->named_parameters())
    if (name.size() >= 4 && name.substr(name.size() - 4) == "bias") bias_count += t.numel(), ++n_bias_tensors;
  for (auto& [name, t] : without->named_parameters())
    CHECK_MESSAGE(name.substr(name.size() >= 4 ? name.size() - 4 : 0) != "bias", name);
  MESSAGE("biased ", with->num_parameters(), " params, bias-free ", without->num_parameters(), "; ", n_bias_tensors,
          " bias tensors with ", bias_count, " elements");
  CHECK(bias_count > 0);
  CHECK(with->num_parameters() - without->num_parameters() == bias_count);
  double m1 = 0, m2 = 0;
  auto [f1, l1] = train_fixed(*with, 60, 1e-2, &m1);
  auto [f2, l2] = train_fixed(*without, 60, 1e-2, &m2);
  MESSAGE("fixed-batch loss over 60 steps: biased ", f1, " -> ", l1, " (mean ", m1, "), bias-free ", f2, " -> ", l2,
          " (mean ", m2, ")");
  // Every bias starts at 0 and the weights are drawn in the same order, so the two models
  // start as the same function; both memorise the batch, along curves 2 % apart on average.
  CHECK(std::abs(f1 - f2) < 1e-6);
  CHECK(std::max(l1, l2) < 0.05 * f1);
  CHECK(std::abs(m1 - m2) < 0.02 * m1);
  TZ_PROOF_NUMBER("mean-loss gap / mean loss", std::abs(m1 - m2) / m1);
}

TZ_PROOF(dropout_sites,
         "eval deterministic and equal to p = 0, train-mode Monte-Carlo mean of each site = eval output") {
  auto m = lm(R"("depth": 2, "emb_dropout": 0.2, "ff_dropout": 0.3, "dropout": 0.1)", 8);
  auto plain = lm(R"("depth": 2)", 9);
  plain->load_state_dict(m->state_dict());
  m->eval();
  plain->eval();
  NoGradGuard ng;
  Tensor ids = ids_of(3);
  Tensor a = m->forward(ids), b = m->forward(ids);
  CHECK(testing::max_abs_diff(a, b) == 0.0);
  CHECK(testing::max_abs_diff(a, plain->forward(ids)) == 0.0);
  // Embedding site: the mean of 4000 train-mode draws approaches the eval embedding.
  Tensor eval_emb = m->embed(ids, 0);
  m->train();
  Tensor acc = zeros_like(eval_emb);
  const int n = 4000;
  for (int i = 0; i < n; ++i) acc = acc + m->embed(ids, 0);
  double e1 = testing::rel_rms(acc / double(n), eval_emb);
  // FFN site (the block's ff_drop on a fixed branch output).
  auto& blk = *m->layers->at<models::Block>(0);
  Generator g(5);
  Tensor y = randn({2, 12, 16}, g);
  Tensor acc2 = zeros_like(y);
  for (int i = 0; i < n; ++i) acc2 = acc2 + blk.ff_drop->forward(y);
  double e2 = testing::rel_rms(acc2 / double(n), y);
  // Attention site: dropped probabilities, averaged over draws, approach the eval output.
  auto drop_attn = lm(R"("depth": 1, "attn_dropout": 0.3)", 10);
  drop_attn->eval();
  Tensor eval_logits = drop_attn->forward(ids);
  drop_attn->train();
  Tensor acc3 = zeros_like(eval_logits);
  for (int i = 0; i < n / 4; ++i) acc3 = acc3 + drop_attn->forward(ids);
  double e3 = testing::rel_rms(acc3 / double(n / 4), eval_logits);
  double single = testing::rel_rms(drop_attn->forward(ids), eval_logits);
  Tensor one = m->embed(ids, 0);
  MESSAGE("Monte-Carlo (", n, " draws) rel. error: embedding site ", e1, ", FFN site ", e2, "; attention site (", n / 4,
          " draws) ", e3, " vs one draw ", single);
  TZ_PROOF_NUMBER("Monte-Carlo rel. error (embedding)", e1);
  CHECK(e1 < 0.02);  // ~sqrt(p/(1-p)/n) = 0.008 for p = 0.2
  CHECK(e2 < 0.02);
  CHECK(e3 < 0.1 * single);                         // averaging removes the noise of one draw
  CHECK(testing::max_abs_diff(one, eval_emb) > 0);  // train mode does drop
}

TZ_PROOF(token_shift, "chunk c is delayed c steps, causal, shift 0 is the identity, chunked state == parallel") {
  Generator gen(6);
  const int64_t B = 2, T = 7, C = 10, s = 2;  // chunks: 4 unshifted channels, then 3 + 3
  Tensor u = randn({B, T, C}, gen, DType::f64);
  Tensor y = models::token_shift(u, s);
  double worst = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t ch = 0; ch < C; ++ch) {
        int64_t c = ch < 4 ? 0 : ch < 7 ? 1 : 2;
        double want = t - c >= 0 ? u.at({b, t - c, ch}) : 0.0;
        worst = std::max(worst, std::abs(y.at({b, t, ch}) - want));
      }
  CHECK(worst == 0.0);
  // Causal: changing inputs after t = 3 leaves outputs 0..3 unchanged.
  Tensor u2 = u.clone();
  core::copy_(u2.narrow(1, 4, T - 4), randn({B, T - 4, C}, gen, DType::f64));
  CHECK(testing::max_abs_diff(models::token_shift(u2, s).narrow(1, 0, 4), y.narrow(1, 0, 4)) == 0.0);
  CHECK(testing::max_abs_diff(models::token_shift(u, 0), u) == 0.0);
  // Feeding 3 + 4 positions with the carried history equals the parallel form.
  Tensor hist;
  Tensor a = models::token_shift(u.narrow(1, 0, 3), s, &hist), b2 = models::token_shift(u.narrow(1, 3, 4), s, &hist);
  CHECK(testing::max_abs_diff(cat({a, b2}, 1), y) == 0.0);
  // In the LM: token_shift 0 gives the same model as no key; causality of the whole LM.
  auto m0 = lm(R"("depth": 2, "token_shift": 0)", 3), m = lm(R"("depth": 2)", 3);
  auto ms = lm(R"("depth": 2, "token_shift": [1, 3])", 3);
  NoGradGuard ng;
  Tensor ids = ids_of(4), ids2 = ids.clone();
  for (int64_t t = 6; t < 12; ++t) ids2.set({0, t}, double((int64_t(ids.at({0, t})) + 5) % 16));
  CHECK(testing::max_abs_diff(m0->forward(ids), m->forward(ids)) == 0.0);
  double prefix = testing::max_abs_diff(ms->forward(ids).narrow(1, 0, 6), ms->forward(ids2).narrow(1, 0, 6));
  MESSAGE("token-shift LM: prefix logits moved by ", prefix, " when tokens 6.. change");
  TZ_PROOF_NUMBER("LM prefix moved by later tokens", prefix);
  CHECK(prefix == 0.0);
}

TZ_PROOF(sandwich_transformer,
         "k = 0 reproduces the interleaved baseline, s^k (sf)^(n-k) f^k keeps n mixers and n FFNs") {
  auto base = lm(R"("depth": 3)", 10), k0 = lm(R"("depth": 3, "layout": "sandwich", "sandwich_coef": 0)", 10);
  NoGradGuard ng;
  Tensor ids = ids_of(5);
  CHECK(base->state_dict().size() == k0->state_dict().size());
  CHECK(testing::max_abs_diff(base->forward(ids), k0->forward(ids)) == 0.0);
  TZ_PROOF_NUMBER("k = 0 vs interleaved", testing::max_abs_diff(base->forward(ids), k0->forward(ids)));
  for (int64_t k : {1, 2, 3}) {
    auto m = lm(cat_str(R"("depth": 3, "layout": "sandwich", "sandwich_coef": )", k), 10);
    std::string order;
    for (size_t i = 0; i < m->layers->size(); ++i) {
      auto b = m->layers->at<models::Block>(i);
      order += std::string(b->mixer ? "s" : "") + (b->ffn ? "f" : "");
    }
    std::string want = std::string(size_t(k), 's');
    for (int64_t i = k; i < 3; ++i) want += "sf";
    want += std::string(size_t(k), 'f');
    MESSAGE("k = ", k, ": sublayers ", order);
    CHECK(order == want);
    CHECK(m->num_parameters() == base->num_parameters());  // same sublayers, reordered
  }
}

TZ_PROOF(macaron, "½ factors applied, two FFN parameter sets, causal preserved") {
  auto m = lm(R"("depth": 1, "macaron": true)", 11);
  m->to(DType::f64);
  m->eval();
  auto& b = *m->layers->at<models::Block>(0);
  REQUIRE(b.sublayers.size() == 3);
  const models::Sublayer &first = b.sublayer("ffn0"), &mix = b.sublayer("mixer"), &last = b.sublayer("ffn");
  NoGradGuard ng;
  Tensor ids = ids_of(6);
  Tensor x = m->embed(ids, 0);
  Tensor h = x + 0.5 * first.ffn->forward(first.norm->forward(x));
  h = h + mix.mixer->forward(mix.norm->forward(h), {});
  h = h + 0.5 * last.ffn->forward(last.norm->forward(h));
  CHECK(testing::max_abs_diff(b.forward(x, {}), h) < 1e-12);
  CHECK(first.ffn->num_parameters() == last.ffn->num_parameters());
  CHECK(testing::max_abs_diff(first.ffn->parameters()[0], last.ffn->parameters()[0]) > 0);  // separate weights
  TZ_PROOF_NUMBER("block vs the written-out formula", testing::max_abs_diff(b.forward(x, {}), h));
  auto plain = lm(R"("depth": 1)", 11);
  CHECK(m->num_parameters() - plain->num_parameters() == first.ffn->num_parameters() + first.norm->num_parameters());
  CHECK(m->causal());
  Tensor ids2 = ids.clone();
  for (int64_t t = 7; t < 12; ++t) ids2.set({1, t}, double((int64_t(ids.at({1, t})) + 1) % 16));
  CHECK(testing::max_abs_diff(m->forward(ids).narrow(1, 0, 7), m->forward(ids2).narrow(1, 0, 7)) == 0.0);
}

TZ_PROOF(universal_transformer,
         "T applications of one shared block (+ position and step-t sinusoids) == a depth-T stack with tied weights") {
  auto ut = lm(R"("share_layers": true, "recurrence_steps": 4, "norm_placement": "post", "pos": "learned_abs_pe")", 12);
  auto one = lm(R"("depth": 1, "norm_placement": "post")", 12);
  MESSAGE("UT with 4 steps: ", ut->num_parameters(), " parameters; a depth-1 LM: ", one->num_parameters());
  CHECK(ut->num_parameters() == one->num_parameters());  // the 4 applications share one block
  CHECK(ut->layers->size() == 1);
  ut->to(DType::f64);
  ut->eval();
  NoGradGuard ng;
  Tensor ids = ids_of(7);
  // The depth-T stack written out: H^t = block(H^{t-1} + pos + 0.02 sinusoid(t)).
  auto& blk = *ut->layers->at<models::Block>(0);
  Tensor h = ut->tok_emb->forward(ids);
  for (int64_t t = 1; t <= 4; ++t) {
    Tensor p = ut->pos->embed(0, 12, DType::f64) + nn::sinusoidal_table(t, 1, 16, 10000.0, DType::f64) * 0.02;
    nn::MixerContext ctx{.start = 0, .pos = ut->pos.get(), .layer = t - 1};
    h = blk.forward(h + p, ctx);
  }
  double d = testing::max_abs_diff(ut->forward(ids), linear(h, ut->tok_emb->weight));
  MESSAGE("UT forward vs the written-out tied stack: max diff ", d);
  TZ_PROOF_NUMBER("vs tied stack", d);
  CHECK(d < 1e-12);
}

TZ_PROOF(act,
         "halting weights sum to 1 per position, halted positions unchanged afterwards, ponder-cost gradient check") {
  auto m = lm(R"("act": true, "recurrence_steps": 5, "act_threshold": 0.05)", 13);
  m->to(DType::f64);
  m->eval();
  {  // spread the halting probabilities so positions halt at different steps
    NoGradGuard ng;
    Generator g(2);
    core::copy_(m->tok_emb->weight, randn({16, 16}, g, DType::f64));  // tokens differ clearly
    core::copy_(m->halt->weight, randn({1, 16}, g, DType::f64) * 0.5);
    core::fill_(m->halt->bias, -0.5);
  }
  Tensor ids = ids_of(8, 2, 10);
  nn::AuxLosses aux;
  m->forward(ids, nullptr, &aux);
  const auto& tr = m->last_act;
  CHECK(aux.terms.size() == 1);
  CHECK(testing::max_abs_diff(tr.weight_sum, ones_like(tr.weight_sum)) < 1e-12);
  std::vector<double> steps = tr.steps.to_vector<double>();
  double lo = *std::min_element(steps.begin(), steps.end()), hi = *std::max_element(steps.begin(), steps.end());
  MESSAGE("ACT: N(t) ranges over [", lo, ", ", hi, "], ponder cost ", tr.ponder.item());
  CHECK(lo < hi);  // positions halt at different steps
  double moved = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 10; ++t) {
      int64_t n_t = int64_t(tr.steps.at({b, t, 0}));
      for (size_t n = size_t(n_t); n < tr.states.size(); ++n)
        moved = std::max(moved, testing::max_abs_diff(tr.states[n].select(0, b).select(0, t),
                                                      tr.states[size_t(n_t) - 1].select(0, b).select(0, t)));
    }
  CHECK(moved == 0.0);
  // The ponder cost τ mean(N + R) in f64 against finite differences (through R's p's).
  GradcheckOptions opt;
  opt.atol = 1e-7;
  opt.rtol = 1e-4;
  opt.max_elements = 6;
  std::vector<Tensor> params{m->halt->weight, m->halt->bias, m->layers->at<models::Block>(0)->ffn->parameters()[0]};
  GradcheckResult r = gradcheck(
      [&](const std::vector<Tensor>&) {
        m->forward(ids);
        return m->last_act.ponder * 100.0;
      },
      params, opt);
  MESSAGE("ponder-cost gradcheck: max error ", r.max_abs_error, " ", r.report);
  TZ_PROOF_NUMBER("ponder-cost gradcheck error", r.max_abs_error);
  CHECK(r.ok);
}

TZ_PROOF(forgetful_causal_masking,
         "masked columns get exactly zero attention, r = 0 equals standard training, inference unchanged") {
  auto m = lm(R"("depth": 2, "fcm_max_ratio": 1.0)", 14);
  Generator g(9);
  const int64_t B = 3, T = 10;
  Tensor forgotten = models::draw_forgotten_keys(B, T, 1.0, g);
  REQUIRE(forgotten.defined());
  // Attention probabilities: with v = identity the output rows are the probabilities.
  Tensor q = randn({B, 1, T, 4}, g, DType::f64), k = randn({B, 1, T, 4}, g, DType::f64);
  Tensor v = eye(T, DType::f64).reshape({1, 1, T, T}).expand({B, 1, T, T}).contiguous();
  Tensor probs = nn::sdpa(q, k, v, {.causal = true, .forgotten_keys = forgotten});
  int64_t masked = 0;
  double leak = 0, row_err = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < T; ++j) {
        double p = probs.at({b, 0, i, j});
        sum += p;
        if (forgotten.at({b, j}) != 0 && i > j) ++masked, leak = std::max(leak, std::abs(p));
      }
      row_err = std::max(row_err, std::abs(sum - 1));
      CHECK(probs.at({b, 0, i, i}) > 0);  // the current token stays visible
    }
  MESSAGE("FCM: ", masked, " masked (query, key) pairs, max probability on them ", leak, ", rows sum to 1 +- ",
          row_err);
  TZ_PROOF_NUMBER("probability on masked keys", leak);
  CHECK(masked > 0);
  CHECK(leak == 0.0);
  CHECK(row_err < 1e-12);
  // r = 0 (η so small that floor(r T) = 0) is exactly the standard training step.
  auto tiny = lm(R"("depth": 2, "fcm_max_ratio": 0.01)", 14), plain = lm(R"("depth": 2)", 14);
  Tensor ids = ids_of(10), targets = ids_of(11);
  Tensor l1 = tiny->loss(ids, targets), l2 = plain->loss(ids, targets);
  l1.backward();
  l2.backward();
  CHECK(l1.item() == l2.item());
  CHECK(testing::max_abs_diff(tiny->tok_emb->weight.grad(), plain->tok_emb->weight.grad()) == 0.0);
  // With η = 1 training differs; inference (eval) is identical to the plain model.
  Tensor lf = m->loss(ids, targets);
  MESSAGE("train loss: FCM η=1 ", lf.item(), " vs standard ", l2.item());
  CHECK(lf.item() != l2.item());
  m->eval();
  plain->eval();
  NoGradGuard ng;
  CHECK(testing::max_abs_diff(m->forward(ids), plain->forward(ids)) == 0.0);
}
