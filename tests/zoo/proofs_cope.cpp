// Proof of CoPE contextual positions (nn/position/cope.h): all gates 1 is a relative
// position embedding, the gate sums and the interpolation equal plain loops, cached decode
// equals the forward, and a counting task a one-layer model solves with CoPE but not with
// RoPE or learned relative positions.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
#include "nn/position/cope.h"
#include "optim/adam.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {

// One attention layer with CoPE by loops over (b, h, i, j) from the layer's own weights, at
// positions start..: g_ij = σ(q_i.k_j / sqrt(D)) (or σ(forced)), p_ij = min(Σ_{k=j}^{i} g_ik, P),
// q_i.e[p] by interpolating the vectors e[⌊p⌋], e[⌈p⌉] (not the scores), causal softmax.
Tensor cope_attention_loops(nn::Attention& attn, const nn::CoPEPositions& cope, const Tensor& x, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), D = cope.options.head_dim, H = C / D;
  const double P = double(cope.options.max_pos);
  Tensor qkv = attn.qkv->forward(x).contiguous();  // [B, T, 3 C]: [q | k | v], heads inside
  Tensor e = cope.table(layer).to(DType::f64).contiguous();
  auto at = [&](int64_t b, int64_t t, int64_t part, int64_t h, int64_t d) {
    return qkv.data<double>()[(b * T + t) * 3 * C + part * C + h * D + d];
  };
  std::vector<double> z(static_cast<size_t>(B * T * C), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> qk(static_cast<size_t>(i + 1)), g(static_cast<size_t>(i + 1)), s(qk.size());
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += at(b, i, 0, h, d) * at(b, j, 1, h, d);
          qk[size_t(j)] = dot / std::sqrt(double(D));
          const double logit = cope.force_gate_logit != 0 ? cope.force_gate_logit : qk[size_t(j)];
          g[size_t(j)] = 1.0 / (1.0 + std::exp(-logit));
        }
        double top = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          double p = 0;
          for (int64_t k = j; k <= i; ++k) p += g[size_t(k)];
          p = std::min(p, P);
          const double lo = std::floor(p), w = p - lo;
          const int64_t n0 = int64_t(lo), n1 = int64_t(std::ceil(p));
          double pos = 0;
          for (int64_t d = 0; d < D; ++d)
            pos += at(b, i, 0, h, d) * ((1 - w) * e.data<double>()[n0 * D + d] + w * e.data<double>()[n1 * D + d]);
          s[size_t(j)] = qk[size_t(j)] + pos;
          top = std::max(top, s[size_t(j)]);
        }
        double norm = 0;
        for (double& v : s) norm += (v = std::exp(v - top));
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t d = 0; d < D; ++d)
            z[size_t((b * T + i) * C + h * D + d)] += s[size_t(j)] / norm * at(b, j, 2, h, d);
      }
  return attn.out->forward(from_vector(z, {B, T, C}));
}

// The counting task: noise tokens 0..5 and marked tokens 6..11 at random, then the query
// token 12; the answer is the identity of the k-th last marked token (as noise 0..5). The
// distance to it varies from sequence to sequence, its count of marked tokens does not.
struct CountBatch {
  Tensor ids, answer;
};
CountBatch count_batch(std::mt19937& rng, int64_t B, int64_t L, int64_t kth) {
  std::vector<int64_t> ids(static_cast<size_t>(B * L)), ans(static_cast<size_t>(B));
  std::uniform_int_distribution<int64_t> tok(0, 5);
  std::bernoulli_distribution marked(0.3);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> marks;
    do {
      marks.clear();
      for (int64_t t = 0; t + 1 < L; ++t) {
        const bool m = marked(rng);
        ids[size_t(b * L + t)] = tok(rng) + (m ? 6 : 0);
        if (m) marks.push_back(t);
      }
    } while (int64_t(marks.size()) < kth);
    ids[size_t(b * L + L - 1)] = 12;
    ans[size_t(b)] = ids[size_t(b * L + marks[marks.size() - size_t(kth)])] - 6;
  }
  return {from_vector(ids, {B, L}), from_vector(ans, {B})};
}

// Held-out accuracy of a one-layer LM with position scheme `pos` after `steps` of Adam.
double count_accuracy(const std::string& pos, int64_t steps, int64_t L, int64_t kth) {
  Generator gen(5);
  auto lm = zoo::make_lm(cat_str(R"({"vocab": 13, "dim": 32, "depth": 1, "heads": 2, "context": 64, )", pos, "}"), gen);
  optim::Adam adam(lm->named_parameters(), {.lr = 1e-2});
  std::mt19937 rng(7);
  for (int64_t step = 0; step < steps; ++step) {
    CountBatch d = count_batch(rng, 32, L, kth);
    Tensor logits = lm->forward(d.ids).select(1, L - 1);  // [B, V]
    Tensor loss = cross_entropy(logits, d.answer);
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  NoGradGuard no_grad;
  std::mt19937 test_rng(99);
  CountBatch d = count_batch(test_rng, 512, L, kth);
  Tensor logits = lm->forward(d.ids).select(1, L - 1).contiguous();
  const int64_t V = logits.size(1);
  std::vector<float> v = logits.to_vector<float>();
  std::vector<int64_t> a = d.answer.to_vector<int64_t>();
  int64_t right = 0;
  for (int64_t b = 0; b < 512; ++b) {
    const float* row = v.data() + b * V;
    right += std::max_element(row, row + V) - row == a[size_t(b)];
  }
  return double(right) / 512.0;
}

}  // namespace

TZ_PROOF(cope,
         "all gates 1 is relative PE p = i-j+1, gate sums and interpolation equal loops, decode == forward, "
         "counts marked tokens where RoPE and relative PE fail") {
  Generator gen(21);
  const int64_t P = 6;
  nn::CoPEPositions cope(nn::CoPEOptions{.head_dim = 8, .layers = 2, .max_pos = P, .init_std = 1.0}, gen);
  cope.to(DType::f64);
  nn::MixerContext layer1{.layer = 1};
  Tensor e = cope.table(1);

  // (1) Every gate 1 (σ(40) rounds to 1 in f64): p_ij = i - j + 1 exactly, and the term is
  // q_i . e[min(i - j + 1, P)], a relative position embedding, against a loop.
  cope.force_gate_logit = 40;
  Tensor q = randn({2, 2, 5, 8}, gen, DType::f64), k = randn({2, 2, 11, 8}, gen, DType::f64);
  double count_err = 0, rel_err = 0;
  for (auto [qs, ks] : {std::pair<int64_t, int64_t>{6, 0}, {0, 0}, {100000, 99994}}) {
    Tensor p = cope.positions(cope.gates(q, k, qs, ks, &layer1));
    Tensor term = cope.query_score_bias(q, k, qs, ks, &layer1);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t i = 0; i < 5; ++i)
          for (int64_t j = 0; j < 11 && ks + j <= qs + i; ++j) {
            const int64_t dist = (qs + i) - (ks + j) + 1;
            count_err = std::max(count_err, std::abs(p.at({b, h, i, j}) - double(std::min<int64_t>(dist, P))));
            double s = 0;
            for (int64_t d = 0; d < 8; ++d) s += q.at({b, h, i, d}) * e.at({std::min<int64_t>(dist, P), d});
            rel_err = std::max(rel_err, std::abs(term.at({b, h, i, j}) - s));
          }
  }
  MESSAGE("cope: all gates 1: |p - (i - j + 1)| ", count_err, ", term vs relative PE loop ", rel_err);
  CHECK(count_err == 0);
  CHECK(rel_err < 1e-12);
  // The whole layer with gates 1 against the loops of a relative-PE attention.
  nn::Attention attn(nn::AttentionOptions{.dim = 16, .heads = 2}, gen);
  attn.to(DType::f64);
  Tensor x = randn({2, 12, 16}, gen, DType::f64);
  Tensor y1 = attn.forward(x, {.start = 0, .pos = &cope, .layer = 1});
  const double rel_layer = testing::rel_rms(y1, cope_attention_loops(attn, cope, x, 1));
  MESSAGE("cope: gates 1, attention vs relative-PE loops (rel rms) ", rel_layer);
  CHECK(rel_layer < 1e-12);

  // (2) Learned gates: fractional counts and the interpolated q.e[p] against loops that
  // interpolate the vectors e (the paper interpolates the scores q.e[n]: the same by
  // linearity); shifting every position leaves them unchanged; gradients by gradcheck.
  cope.force_gate_logit = 0;
  Tensor y = attn.forward(x, {.start = 0, .pos = &cope, .layer = 1});
  const double loops = testing::rel_rms(y, cope_attention_loops(attn, cope, x, 1));
  const double moved = testing::max_abs_diff(attn.forward(x, {.start = 777, .pos = &cope, .layer = 1}), y);
  Tensor g = cope.gates(q, k, 6, 0, &layer1), p = cope.positions(g);
  double sum_err = 0, frac = 0;
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j <= 6 + i; ++j) {
      double s = 0;
      for (int64_t m = j; m <= 6 + i; ++m) s += g.at({1, 1, i, m});
      sum_err = std::max(sum_err, std::abs(p.at({1, 1, i, j}) - std::min(s, double(P))));
      frac = std::max(frac, std::abs(s - std::round(s)));
    }
  MESSAGE("cope: learned gates: attention vs loops (rel rms) ", loops, ", gate sums vs loops ", sum_err,
          ", largest fractional part ", frac, ", output change at offset 777 ", moved);
  TZ_PROOF_NUMBER("attention vs explicit loops (rel rms)", loops);
  CHECK(loops < 1e-12);
  CHECK(sum_err < 1e-13);
  CHECK(frac > 0.2);  // the counts really are fractional here
  CHECK(moved < 1e-12);
  CHECK(testing::max_abs_diff(y, y1) > 1e-3);  // the gates matter
  auto term_of = [&](const std::vector<Tensor>& in) { return cope.query_score_bias(in[0], in[1], 4, 0, &layer1); };
  Tensor qg = randn({1, 2, 3, 8}, gen, DType::f64).requires_grad_(),
         kg = randn({1, 2, 7, 8}, gen, DType::f64).requires_grad_();
  GradcheckResult gc = gradcheck(term_of, {qg, kg});
  MESSAGE("cope: gradcheck of the term in q, k: ", gc.report);
  CHECK(gc.ok);

  // (3) Cached decoding equals the full forward.
  const double dec = testing::lm_step_vs_forward(R"({"pos": "cope", "cope_max_pos": 4})", 12);
  MESSAGE("cope: cached decode vs forward, max diff ", dec);
  CHECK(dec < 1e-10);
  CHECK_THROWS_WITH_AS(nn::CoPEPositions(nn::CoPEOptions{.head_dim = 8, .max_pos = 0}, gen),
                       doctest::Contains("cope_max_pos"), Error);

  // (4) The counting task (the 3rd last marked token), one layer, the same budget.
  if (!testing::learning_runs()) return;
  const int64_t steps = testing::long_runs() ? 1500 : 300, L = 16;
  const double acc_cope = count_accuracy(R"("pos": "cope", "cope_max_pos": 8)", steps, L, 3);
  const double acc_rope = count_accuracy(R"("pos": "rope")", steps, L, 3);
  const double acc_rel = count_accuracy(R"("pos": "shaw_rel_pos", "shaw_max_distance": 16)", steps, L, 3);
  MESSAGE("cope: 3rd last marked token, ", steps, " steps, held-out accuracy: cope ", acc_cope, ", rope ", acc_rope,
          ", shaw_rel_pos ", acc_rel, " (chance 1/6)");
  CHECK(acc_cope > 0.9);
  CHECK(acc_cope > acc_rope + 0.2);
  CHECK(acc_cope > acc_rel + 0.2);
}
