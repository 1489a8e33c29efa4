// Proofs of the attention options on the scores and weights (nn/attention/features/):
// talking heads, RealFormer, top-k, entmax, adaptive span; each on a small f64 layer.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "models/zoo.h"
#include "nn/attention/features/realformer.h"
#include "tests/zoo/proofs.h"
#include "tests/zoo/proofs_attention.h"

using namespace tz;
using namespace tz::attn_proofs;

TZ_PROOF(talking_heads, "P^l = P^w = I reproduces vanilla_mha, causal mask preserved after both mixes") {
  auto th = make_attn(R"({"attn_talking_heads": true})", 10);
  auto van = make_attn("{}", 10);
  Tensor x = input(7);
  double d0 = testing::max_abs_diff(th->forward(x, {}), van->forward(x, {}));
  randomise(th->param("pre_mix"), 11, 1.0);
  randomise(th->param("post_mix"), 12, 1.0);
  NoGradGuard no_grad;
  Tensor p = th->probabilities(x, {});
  double above = 0;
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 7; ++i)
      for (int64_t j = i + 1; j < 7; ++j) above = std::max(above, std::abs(p.at({0, h, i, j})));
  double moved = testing::max_abs_diff(th->forward(x, {}), van->forward(x, {}));
  MESSAGE("identity mixes vs vanilla ", d0, "; weights above the diagonal after random mixes ", above,
          "; random mixes change the output by ", moved, "; decode diff ", decode_diff(*th, x));
  TZ_PROOF_NUMBER("identity mixes vs vanilla", d0);
  CHECK(d0 < 1e-12);
  CHECK(above == 0);
  CHECK(moved > 1e-4);
  check_causal(*th, x);
  CHECK(decode_diff(*th, x) < 1e-12);
}

TZ_PROOF(realformer, "S^l - S^(l-1) = the layer's raw logits, mask after the sum (causal), layer 1 == vanilla_mha") {
  auto l1 = make_attn(R"({"attn_residual": true})", 20), l2 = make_attn(R"({"attn_residual": true})", 21);
  auto van = make_attn("{}", 20);
  const int64_t T = 7;
  Tensor x = input(T);
  NoGradGuard no_grad;
  std::map<std::string, Tensor> carry;
  nn::MixerContext ctx{.carry = &carry};
  Tensor y1 = l1->forward(x, ctx);
  Tensor s1 = carry.at(nn::kResidualScoresKey);
  double first = testing::max_abs_diff(y1, van->forward(x, {}));
  double d1 = testing::max_abs_diff(s1, raw_logits(*l1, x));
  Tensor x2 = x + y1;
  ctx.layer = 1;
  l2->forward(x2, ctx);
  Tensor s2 = carry.at(nn::kResidualScoresKey);
  double d2 = testing::max_abs_diff(s2 - s1, raw_logits(*l2, x2));
  // The scores handed on are unmasked (future keys hold finite logits); the mask comes after.
  CHECK(std::isfinite(s1.at({0, 0, 0, T - 1})));
  CHECK(s1.at({0, 0, 0, T - 1}) != 0);
  auto stack = [&](const Tensor& in) {
    std::map<std::string, Tensor> c;
    nn::MixerContext cx{.carry = &c};
    Tensor h = in + l1->forward(in, cx);
    cx.layer = 1;
    return h + l2->forward(h, cx);
  };
  auto [before, after] = causal_diffs(stack, x, 3);
  // Decoding keeps it: each layer's new score rows need only the previous layer's same rows.
  Generator gen(22);
  auto lm =
      zoo::make_lm(R"({"vocab": 16, "dim": 16, "depth": 3, "heads": 2, "context": 16, "attn_residual": true})", gen);
  lm->to(DType::f64);
  Tensor ids = randint(0, 16, {2, 9}, gen);
  Tensor full = lm->forward(ids);
  auto st = lm->make_state(2, 9);
  double dec = 0;
  for (int64_t t = 0; t < 9; ++t)
    dec = std::max(dec, testing::max_abs_diff(lm->step(ids.narrow(1, t, 1), st), full.narrow(1, t, 1)));
  MESSAGE("layer 1 vs vanilla ", first, "; S^1 - raw^1 ", d1, "; (S^2 - S^1) - raw^2 ", d2, "; 2-layer prefix moved ",
          before, " (suffix ", after, "); 3-layer LM decode vs forward ", dec);
  TZ_PROOF_NUMBER("(S2 - S1) - raw2", d2);
  CHECK(first < 1e-12);
  CHECK(d1 < 1e-12);
  CHECK(d2 < 1e-12);
  CHECK(before < 1e-12);
  CHECK(after > 1e-6);
  CHECK(dec < 1e-9);
}

TZ_PROOF(topk_sparse_attn, "k >= allowed keys equals dense softmax, every row has <= k non-zeros, causal") {
  Tensor x = input(7);
  auto dense = make_attn(R"({"attn_sparse_topk": 8})", 23);
  double d = testing::max_abs_diff(dense->forward(x, {}), make_attn("{}", 23)->forward(x, {}));
  auto sp = make_attn(R"({"attn_sparse_topk": 2})", 24);
  randomise(sp->qkv->weight, 25, 1.0);
  NoGradGuard no_grad;
  Tensor p = sp->probabilities(x, {});
  int64_t worst = 0, wrong = 0;
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < 7; ++i) {
        int64_t nz = 0;
        for (int64_t j = 0; j < 7; ++j) nz += p.at({b, h, i, j}) != 0;
        worst = std::max(worst, nz);
        wrong += nz != std::min<int64_t>(2, i + 1);
      }
  MESSAGE("k=8 (>= 7 keys) vs dense ", d, "; k=2: most non-zeros in a row ", worst,
          ", rows with != min(2, i+1): ", wrong);
  TZ_PROOF_NUMBER("k >= keys vs dense", d);
  CHECK(d < 1e-12);
  CHECK(worst <= 2);
  CHECK(wrong == 0);
  check_causal(*sp, x);
  CHECK(decode_diff(*sp, x) < 1e-12);
}

// With 3 token ids most keys repeat, so scores tie exactly at the k-th place, where rounding
// alone would decide which keys a decode step and the forward keep.
TEST_CASE("topk_sparse_attn: a 2-layer LM decodes as it runs forward when scores tie") {
  double worst = 0;
  for (const char* pos : {"t5_rel_bias", "rope", "learned_abs_pe", "alibi"})
    for (int64_t k : {1, 2, 3})
      for (uint64_t seed : {1, 2, 3}) {
        Generator gen(seed);
        auto lm = zoo::make_lm(cat_str(R"({"vocab": 3, "dim": 16, "depth": 2, "heads": 2, "context": 16, )",
                                       R"("attn_sparse_topk": )", k, R"(, "pos": ")", pos, R"("})"),
                               gen);
        lm->to(DType::f64);
        lm->eval();
        NoGradGuard no_grad;
        Tensor ids = randint(0, 3, {2, 14}, gen), full = lm->forward(ids);
        auto state = lm->make_state(2, 14);
        for (int64_t t = 0; t < 14; ++t)
          worst = std::max(worst, testing::max_abs_diff(lm->step(ids.narrow(1, t, 1), state), full.narrow(1, t, 1)));
      }
  MESSAGE("4 position schemes x k 1-3 x 3 seeds, 14 tokens of 3 ids: max |step - forward| ", worst);
  CHECK(worst < 1e-12);
}

TZ_PROOF(entmax_attn,
         "alpha->1 matches softmax, alpha=2 is sparsemax's closed form, rows sum to 1 with exact zeros, gradcheck") {
  const int64_t T = 7;
  Tensor x = input(T);
  auto sm = make_attn(R"({"attn_entmax": 2})", 26);
  randomise(sm->qkv->weight, 27, 1.0);
  NoGradGuard no_grad;
  Tensor p = sm->probabilities(x, {});
  Tensor z = raw_logits(*sm, x);
  double closed = 0, rowsum = 0;
  int64_t zeros_allowed = 0;
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> v;
        for (int64_t j = 0; j <= i; ++j) v.push_back(z.at({b, h, i, j}));
        std::sort(v.rbegin(), v.rend());
        double cum = 0, tau = 0, s = 0;
        for (size_t k = 1; k <= v.size(); ++k)
          if (1 + double(k) * v[k - 1] > (cum += v[k - 1])) tau = (cum - 1) / double(k);
        for (int64_t j = 0; j < T; ++j) {
          double want = j <= i ? std::max(z.at({b, h, i, j}) - tau, 0.0) : 0.0;
          closed = std::max(closed, std::abs(p.at({b, h, i, j}) - want));
          s += p.at({b, h, i, j});
          zeros_allowed += j <= i && p.at({b, h, i, j}) == 0;
        }
        rowsum = std::max(rowsum, std::abs(s - 1));
      }
  auto near1 = make_attn(R"({"attn_entmax": 1.0001})", 28);
  auto soft = make_attn("{}", 28);
  double d1 = testing::max_abs_diff(near1->forward(x, {}), soft->forward(x, {}));
  auto e15 = make_attn(R"({"attn_entmax": 1.5})", 29);
  randomise(e15->qkv->weight, 30, 1.0);
  MESSAGE("sparsemax vs closed form ", closed, "; |row sum - 1| ", rowsum, "; exact zeros among allowed keys ",
          zeros_allowed, "; alpha=1.0001 vs softmax attention ", d1, "; entmax15 decode diff ", decode_diff(*e15, x));
  TZ_PROOF_NUMBER("sparsemax vs closed form", closed);
  CHECK(closed < 1e-12);
  CHECK(rowsum < 1e-12);
  CHECK(zeros_allowed > 0);
  CHECK(d1 < 1e-4);
  CHECK(decode_diff(*e15, x) < 1e-12);
  check_causal(*e15, x);
}

TEST_CASE("entmax_attn, proof part 2: entmax15 attention passes gradcheck through the threshold") {
  auto e15 = make_attn(R"({"attn_entmax": 1.5})", 29);
  randomise(e15->qkv->weight, 30, 1.0);
  Tensor x = input(6).requires_grad_();
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return e15->forward(in[0], {}); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
}

TZ_PROOF(adaptive_span, "z >= context equals full softmax attention, keys beyond z + R get exactly zero weight") {
  const int64_t T = 9;
  Tensor x = input(T);
  auto full = make_attn(R"({"attn_adaptive_span": 16, "attn_span_ramp": 2, "attn_span_init": 1.0})", 36);
  double d = testing::max_abs_diff(full->forward(x, {}), make_attn("{}", 36)->forward(x, {}));
  auto a = make_attn(R"({"attn_adaptive_span": 16, "attn_span_ramp": 2, "attn_span_init": 0.5})", 37);
  {
    NoGradGuard no_grad;
    core::copy_(a->param("span"), from_vector(std::vector<double>{0.25, 0.1}));  // z = 4 and 1.6
  }
  const double R = 2, z[2] = {4.0, 1.6};
  Tensor p;
  {
    NoGradGuard no_grad;
    p = a->probabilities(x, {});
  }
  int64_t zero_beyond = 0, nonzero_beyond = 0, zero_within = 0;
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          double w = p.at({b, h, i, j});
          if (double(i - j) >= z[h] + R) (w == 0 ? zero_beyond : nonzero_beyond)++;
          if (double(i - j) <= z[h]) zero_within += w == 0;
        }
  // The L1 penalty on the spans reaches ctx.aux with a gradient on z.
  nn::AuxLosses aux;
  a->forward(x, {.aux = &aux});
  REQUIRE(aux.terms.size() == 1);
  double pen = aux.total().item();
  aux.total().backward();
  MESSAGE("z >= T vs full softmax ", d, "; keys beyond z + R: ", zero_beyond, " zero, ", nonzero_beyond,
          " non-zero; zero weights within z: ", zero_within, "; penalty ", pen, " (= 2e-6 * 16 * 0.35); decode diff ",
          decode_diff(*a, x));
  TZ_PROOF_NUMBER("z >= T vs full softmax", d);
  CHECK(d < 1e-12);
  CHECK(zero_beyond > 0);
  CHECK(nonzero_beyond == 0);
  CHECK(zero_within == 0);
  CHECK(pen == doctest::Approx(2e-6 * 16 * 0.35));
  CHECK(a->param("span").grad().at({0}) > 0);
  check_causal(*a, x);
  CHECK(decode_diff(*a, x) < 1e-12);
}
