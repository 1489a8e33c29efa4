// Proofs of the token-mixing MLPs S²-MLP (nn/ffn/s2_mlp.h) and HyperMixer
// (nn/ffn/hypermixer.h): s2_mlp, hypermixer.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/ffn/hypermixer.h"
#include "nn/ffn/s2_mlp.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
constexpr int64_t kC = 6, kT = 11;

// Output positions 0..4 after positions 5.. of x change, and positions 5.. themselves:
// (largest move of the prefix, largest move of the suffix).
std::pair<double, double> suffix_change(nn::Mixer& m, const Tensor& x, Generator& gen) {
  const int64_t B = x.size(0), T = x.size(1);
  Tensor x2 = x.clone();
  core::copy_(x2.narrow(1, 5, T - 5), randn({B, T - 5, x.size(2)}, gen, DType::f64));
  Tensor y = m.forward(x, {}), y2 = m.forward(x2, {});
  return {testing::max_abs_diff(y2.narrow(1, 0, 5), y.narrow(1, 0, 5)),
          testing::max_abs_diff(y2.narrow(1, 5, T - 5), y.narrow(1, 5, T - 5))};
}

// |token by token - forward| and |chunks 4 + rest - forward|, each from a fresh state.
std::pair<double, double> decode_vs_forward(nn::Mixer& m, const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1);
  auto st = m.make_state(B, T, DType::f64);
  std::vector<Tensor> steps;
  for (int64_t t = 0; t < T; ++t) steps.push_back(m.forward(x.narrow(1, t, 1), {.start = t}, st.get()));
  auto st2 = m.make_state(B, T, DType::f64);
  Tensor a = m.forward(x.narrow(1, 0, 4), {.start = 0}, st2.get());
  Tensor b = m.forward(x.narrow(1, 4, T - 4), {.start = 4}, st2.get());
  Tensor full = m.forward(x, {});
  return {testing::max_abs_diff(cat(steps, 1), full), testing::max_abs_diff(cat({a, b}, 1), full)};
}

// S²-MLP: s_t[group i] = h_{t-i-1}[group i] (0 before position 0), y = W_2 s + b_2: loops.
Tensor s2_reference(nn::S2Mlp& m, const Tensor& x) {
  Tensor h = gelu(m.in->forward(x));
  const int64_t B = x.size(0), T = x.size(1), F = h.size(2);
  Tensor s = zeros({B, T, F}, DType::f64);
  for (int64_t i = 0; i < m.groups(); ++i)
    for (int64_t f = m.group_begin(i); f < m.group_begin(i + 1); ++f)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = i + 1; t < T; ++t) s.set({b, t, f}, h.at({b, t - i - 1, f}));
  return m.out->forward(s);
}

double gelu_ref(double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }

// HyperMixer's token MLP as loops: H_t[k, c] = Σ_{j ≤ t (causal) or all j} W1[j, k] x[j, c],
// y_t = LN(Σ_k W2[t, k] GELU(H_t[k, c])). W1, W2 from the module's hypernetworks (per token).
Tensor hyper_reference(nn::Hypermixer& m, const Tensor& x) {
  auto [w1, w2] = m.weights(x, 0);
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), F = w1.size(2);
  Tensor y = zeros({B, T, C}, DType::f64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        double out = 0;
        for (int64_t k = 0; k < F; ++k) {
          double h = 0;
          for (int64_t j = 0; j <= (m.options.causal ? t : T - 1); ++j) h += w1.at({b, j, k}) * x.at({b, j, c});
          out += w2.at({b, t, k}) * gelu_ref(h);
        }
        y.set({b, t, c}, out);
      }
  return m.out_norm->forward(y);
}

std::shared_ptr<nn::Hypermixer> hyper(bool causal, bool positions) {
  Generator gen(21);
  auto m = std::make_shared<nn::Hypermixer>(
      nn::HypermixerOptions{.dim = kC, .hidden = 2 * kC, .causal = causal, .positions = positions}, gen);
  m->to(DType::f64);
  return m;
}
}  // namespace

TZ_PROOF(s2_mlp, "the causal shift equals its loops, output t reads x_{t-g}..x_{t-1} only. On text it beats no shift") {
  {
    NoGradGuard ng;
    Generator gen(31), gx(32);
    nn::S2Mlp m(kC, 2 * kC + 1, 4, true, gen);  // 13 channels: groups of 3, 3, 3, 4
    m.to(DType::f64);
    Tensor x = randn({2, kT, kC}, gx, DType::f64);
    const double loops = testing::max_abs_diff(m.forward(x, {}), s2_reference(m, x));
    auto [prefix, suffix] = suffix_change(m, x, gx);
    auto [step, chunks] = decode_vs_forward(m, x);
    // The receptive field exactly: changing x_5 alone moves y_6 .. y_9 (g = 4 steps later)
    // and nothing else, y_5 included.
    Tensor x3 = x.clone();
    core::copy_(x3.narrow(1, 5, 1), randn({2, 1, kC}, gx, DType::f64));
    Tensor y = m.forward(x, {}), y3 = m.forward(x3, {});
    double outside = 0, inside = INFINITY;
    for (int64_t t = 0; t < kT; ++t) {
      const double d = testing::max_abs_diff(y3.narrow(1, t, 1), y.narrow(1, t, 1));
      if (t >= 6 && t <= 9)
        inside = std::min(inside, d);
      else
        outside = std::max(outside, d);
    }
    MESSAGE("vs loops ", loops, "; prefix moved by a changed suffix ", prefix, " (suffix ", suffix,
            "); changing x_5 moves y_6..y_9 by at least ", inside, " and the rest by ", outside, "; token by token ",
            step, "; chunks 4 + 7 ", chunks);
    TZ_PROOF_NUMBER("prefix moved by a changed suffix", prefix);
    CHECK(loops < 1e-12);
    CHECK(prefix == 0.0);
    CHECK(suffix > 1e-3);
    CHECK(outside == 0.0);
    CHECK(inside > 1e-4);
    CHECK(step < 1e-12);
    CHECK(chunks < 1e-12);
    // Without the shift the mixer sees only its own position: y_5 moves, y_6.. do not.
    nn::S2Mlp flat(kC, 2 * kC + 1, 4, false, gen);
    flat.to(DType::f64);
    Tensor f = flat.forward(x, {}), f3 = flat.forward(x3, {});
    CHECK(testing::max_abs_diff(f3.narrow(1, 6, kT - 6), f.narrow(1, 6, kT - 6)) == 0.0);
    CHECK(testing::max_abs_diff(f3.narrow(1, 5, 1), f.narrow(1, 5, 1)) > 1e-4);
    const std::string lm = R"({"vocab": 11, "dim": 8, "depth": 1, "context": 8, "mixer": "s2_mlp", )";
    CHECK_THROWS_WITH_AS(zoo::make_lm(lm + R"("s2_mlp_groups": 9})", gen), doctest::Contains("s2_mlp_groups"), Error);
    CHECK_THROWS_WITH_AS(zoo::make_lm(lm + R"("s2_mlp_mult": 0})", gen), doctest::Contains("s2_mlp_mult"), Error);
  }
  // The paper's claim in LM form: the parameter-free shift carries context. Two blocks on
  // the grammar text, 300 steps: S²-MLP against the same layers with the groups left in place.
  if (!testing::learning_runs()) return;  // 600 training steps: the release pass's
  const double flat = testing::grammar_text_loss(R"("mixer": "s2_mlp", "s2_mlp_shift": false)", 300);
  const double shifted = testing::grammar_text_loss(R"("mixer": "s2_mlp")", 300);
  MESSAGE("grammar text, validation loss after 300 steps (nats/byte): no shift ", flat, ", S²-MLP shift ", shifted);
  TZ_PROOF_NUMBER("val loss no-shift minus S²-MLP", flat - shifted);
  CHECK(shifted < flat - 0.05);
}

TZ_PROOF(hypermixer,
         "token MLP equals its loops. Non-causal without P is permutation-equivariant at any length. The causal "
         "prefix sums pass the perturbation test and decode == forward") {
  NoGradGuard ng;
  Generator gx(22);
  Tensor x = randn({2, kT, kC}, gx, DType::f64);
  // Both forms against plain loops.
  auto causal = hyper(true, true), full = hyper(false, true);
  const double loops_causal = testing::max_abs_diff(causal->forward(x, {}), hyper_reference(*causal, x));
  const double loops_full = testing::max_abs_diff(full->forward(x, {}), hyper_reference(*full, x));
  MESSAGE("vs loops: causal ", loops_causal, ", non-causal ", loops_full);
  CHECK(loops_causal < 1e-12);
  CHECK(loops_full < 1e-12);

  // Non-causal, no P: permuting the tokens permutes the output. With P it does not.
  std::vector<int64_t> perm(static_cast<size_t>(kT));
  std::iota(perm.begin(), perm.end(), 0);
  std::reverse(perm.begin(), perm.end());
  std::swap(perm[0], perm[3]);
  Tensor p = from_vector(perm, {kT});
  auto bare = hyper(false, false);
  const double equivariant =
      testing::max_abs_diff(bare->forward(index_select(x, 1, p), {}), index_select(bare->forward(x, {}), 1, p));
  const double with_p =
      testing::max_abs_diff(full->forward(index_select(x, 1, p), {}), index_select(full->forward(x, {}), 1, p));
  MESSAGE("non-causal: |y(Πx) - Πy(x)| without P ", equivariant, ", with P ", with_p);
  CHECK(equivariant < 1e-12);
  CHECK(with_p > 1e-3);

  // Any length: no weight depends on L. Each length 1..3 kT runs, and the non-causal form stays
  // equivariant there; the causal outputs of the first L tokens are those of the long run.
  Tensor xl = randn({2, 3 * kT, kC}, gx, DType::f64);
  Tensor yl = causal->forward(xl, {});
  double prefix_runs = 0, equivariant_any = 0;
  for (int64_t L = 1; L <= 3 * kT; ++L) {
    Tensor xs = xl.narrow(1, 0, L);
    prefix_runs = std::max(prefix_runs, testing::max_abs_diff(causal->forward(xs, {}), yl.narrow(1, 0, L)));
    std::vector<int64_t> rev(static_cast<size_t>(L));
    std::iota(rev.rbegin(), rev.rend(), 0);
    Tensor r = from_vector(rev, {L});
    equivariant_any = std::max(equivariant_any, testing::max_abs_diff(bare->forward(index_select(xs, 1, r), {}),
                                                                      index_select(bare->forward(xs, {}), 1, r)));
  }
  MESSAGE("lengths 1..", 3 * kT, ": causal run of L tokens vs the first L of one run ", prefix_runs,
          "; non-causal reversal equivariance ", equivariant_any);
  CHECK(prefix_runs < 1e-12);
  CHECK(equivariant_any < 1e-12);

  // Causal: a changed suffix leaves the prefix exactly; decoding from the running sum H.
  auto [prefix, suffix] = suffix_change(*causal, x, gx);
  auto [step, chunks] = decode_vs_forward(*causal, x);
  MESSAGE("causal: prefix moved by a changed suffix ", prefix, " (suffix ", suffix, "); token by token ", step,
          "; chunks 4 + 7 ", chunks);
  TZ_PROOF_NUMBER("causal prefix moved by a changed suffix", prefix);
  CHECK(prefix == 0.0);
  CHECK(suffix > 1e-3);
  CHECK(step < 1e-12);
  CHECK(chunks < 1e-12);
  // The non-causal form reads the future, and has no decoding state.
  CHECK(suffix_change(*full, x, gx).first > 1e-3);
  CHECK_THROWS_WITH_AS(full->make_state(2, kT, DType::f64), doctest::Contains("whole sequence"), Error);
  Generator gen(23);
  CHECK_THROWS_WITH_AS(
      zoo::make_lm(R"({"vocab": 11, "dim": 8, "depth": 1, "context": 8, "mixer": "hypermixer", "hypermixer_mult": 0})",
                   gen),
      doctest::Contains("hypermixer_mult"), Error);
}
