// Proofs of the learned relative score biases (nn/position/): KERPLE, FIRE, Shaw et al.'s
// relative keys and values. Each checks its catalogue property with numbers.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
#include "nn/attention/sdpa.h"
#include "nn/position/alibi.h"
#include "nn/position/fire.h"
#include "nn/position/kerple.h"
#include "nn/position/shaw_rel_pos.h"
#include "optim/adam.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/arena.h"

using namespace tz;

namespace {

// Train each model on the built-in text at length L, evaluate at L and 2L (arena: same
// batches, same budget). Small enough for a test; the docs' setting is behind long_runs().
std::vector<arena::Result> extrapolation_run(const std::vector<arena::Entry>& models, const std::string& dir) {
  const bool long_run = testing::long_runs();
  arena::Options o{
      .models = models,
      .task = "text",
      .steps = long_run ? 1000 : 500,
      .batch = 16,
      .seq_len = long_run ? 64 : 32,
      .base = long_run ? R"({"dim": 64, "depth": 2, "heads": 4})" : R"({"dim": 32, "depth": 2, "heads": 4})",
      .eval_lengths = long_run ? std::vector<int64_t>{1, 2, 4} : std::vector<int64_t>{1, 2},
      .threads = 1,
      .out_dir = std::string(TZ_BINARY_DIR) + "/" + dir};
  return arena::run(o);
}

}  // namespace

TZ_PROOF(fire, "normalised input in [0, 1] at any length, fits ALiBi's bias by Adam, decode == forward") {
  Generator gen(12);
  nn::FirePositions fire(nn::FireOptions{.heads = 4, .threshold = 64}, gen);
  fire.to(DType::f64);
  // The input of f_θ over the causal pairs (j <= i): in a training window, and for queries a
  // million positions on (every key from 0), under the initial c, L and extreme ones.
  double lo = 1e300, hi = -1e300, first_key = 1e300;
  auto scan = [&](int64_t q_start, int64_t T, int64_t S) {
    Tensor x = fire.normalised(q_start, T, 0, S).contiguous();
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= q_start + i && j < S; ++j) {
        const double v = x.data<double>()[i * S + j];
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    // Beyond the threshold the key at position 0 sits at the normaliser itself: input 1 - O(ε).
    if (q_start >= fire.L_value()) first_key = std::min(first_key, x.data<double>()[0]);
  };
  for (auto [c, scale] : {std::pair<double, double>{0.1, 1.0}, {-3.0, 0.001}, {1e-4, 20.0}, {50.0, -0.5}}) {
    NoGradGuard no_grad;
    core::fill_(fire.c_raw, c);
    core::fill_(fire.L_scale, scale);
    scan(0, 64, 64);
    scan(1000000, 2, 1000002);
  }
  MESSAGE("fire: normalised input over causal pairs up to position 10^6: min ", lo, ", max ", hi,
          ", first key beyond L ", first_key);
  TZ_PROOF_NUMBER("largest normalised input (lengths to 10^6)", hi);
  CHECK(lo >= 0);
  CHECK(hi <= 1);
  CHECK(first_key > 1 - 1e-5);  // the whole interval is used, not squeezed

  // Fit f_θ (and c, L) to ALiBi's bias -m_h (i - j) of 4 heads over the causal pairs of 64
  // positions, by Adam on the mean squared error.
  {
    NoGradGuard no_grad;
    core::fill_(fire.c_raw, 0.1);
    core::fill_(fire.L_scale, 1.0);
  }
  const int64_t T = 64;
  Tensor target = nn::relative_bias_dense(nn::ALiBiPositions(4, 4).score_bias(4, 0, T, T, DType::f64), T, T);
  Tensor causal = tril(ones({T, T}, DType::f64));
  const double pairs = 4.0 * double(T * (T + 1) / 2);
  auto residual = [&]() {
    NoGradGuard no_grad;
    Tensor e = (fire.bias(0, T, 0, T) - target) * causal;
    return std::sqrt(sum(e * e).item() / sum(target * target * causal).item());
  };
  const double before = residual();
  optim::Adam adam(fire.named_parameters(), {.lr = 1e-2});
  for (int step = 0; step < 400; ++step) {
    Tensor e = (fire.bias(0, T, 0, T) - target) * causal;
    Tensor loss = sum(e * e) * (1.0 / pairs);
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  const double after = residual();
  MESSAGE("fire: fit to ALiBi (4 heads, 64 positions, 400 Adam steps): relative rms residual ", before, " -> ", after);
  CHECK(after < 0.05);
  CHECK(after < before / 10);

  // Shared by the layers: one computation per forward of a 3-layer model.
  auto lm = zoo::make_lm(R"({"vocab": 11, "dim": 16, "depth": 3, "heads": 2, "context": 16, "pos": "fire"})", gen);
  auto* scheme = dynamic_cast<nn::FirePositions*>(lm->pos.get());
  REQUIRE(scheme);
  const int64_t n0 = scheme->computations;
  lm->forward(randint(0, 11, {1, 8}, gen));
  CHECK(scheme->computations - n0 == 1);
  // Cached decoding equals the forward, below and beyond the threshold (L = 4 < T = 10).
  double d = testing::lm_step_vs_forward(R"({"pos": "fire", "fire_threshold": 4})");
  MESSAGE("fire: cached decode vs forward, max diff ", d);
  CHECK(d < 1e-10);
  CHECK_THROWS_WITH_AS(nn::FirePositions(nn::FireOptions{.heads = 2, .hidden = 0}, gen),
                       doctest::Contains("fire_hidden"), Error);
  CHECK_THROWS_WITH_AS(nn::FirePositions(nn::FireOptions{.heads = 2, .c = -1}, gen), doctest::Contains("fire_c"),
                       Error);

  // Extrapolation: trained at L = 32 (threshold 16 < L, as the paper's 512 < 2048), loss at 2L,
  // against RoPE trained identically.
  if (!testing::learning_runs()) return;
  auto r = extrapolation_run({{"fire", R"({"pos": "fire", "fire_threshold": 16})"}, {"rope", R"({"pos": "rope"})"}},
                             "proofs_fire_arena");
  REQUIRE(r.size() == 2);
  for (const arena::Result& m : r) {
    REQUIRE(m.val_loss.count(2));
    MESSAGE(m.name, ": val loss @1x ", m.val_loss.at(1), ", @2x ", m.val_loss.at(2), " (ratio ",
            m.val_loss.at(2) / m.val_loss.at(1), ")");
  }
  const double fire_ratio = r[0].val_loss.at(2) / r[0].val_loss.at(1);
  CHECK(r[0].val_loss.at(1) < 1.6);
  CHECK(fire_ratio < r[1].val_loss.at(2) / r[1].val_loss.at(1));
}

namespace {

// The explicit attention of one layer with Shaw's terms, by loops over (b, h, i, j), from the
// layer's own weights: e_ij = q_i.(k_j + a^K)/sqrt(D), z_i = sum_j a_ij (v_j + a^V), causal,
// queries and keys at positions start...
Tensor shaw_attention_loops(nn::Attention& attn, const nn::ShawRelativePositions& shaw, const Tensor& x, int64_t start,
                            int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = shaw.options.heads, D = C / H;
  Tensor qkv = attn.qkv->forward(x).contiguous();  // [B, T, 3 C]: [q | k | v], heads inside
  Tensor ak = shaw.keys(layer).to(DType::f64).contiguous(), av = shaw.values(layer).to(DType::f64).contiguous();
  auto at = [&](int64_t b, int64_t t, int64_t part, int64_t h, int64_t d) {
    return qkv.data<double>()[(b * T + t) * 3 * C + part * C + h * D + d];
  };
  std::vector<double> z(static_cast<size_t>(B * T * C), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> e(static_cast<size_t>(i + 1));
        double top = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t r = shaw.bucket(start + i, start + j);
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += at(b, i, 0, h, d) * (at(b, j, 1, h, d) + ak.data<double>()[r * D + d]);
          e[size_t(j)] = s / std::sqrt(double(D));
          top = std::max(top, e[size_t(j)]);
        }
        double norm = 0;
        for (double& v : e) norm += (v = std::exp(v - top));
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t r = shaw.bucket(start + i, start + j);
          for (int64_t d = 0; d < D; ++d)
            z[size_t((b * T + i) * C + h * D + d)] +=
                e[size_t(j)] / norm * (at(b, j, 2, h, d) + av.data<double>()[r * D + d]);
        }
      }
  return attn.out->forward(from_vector(z, {B, T, C}));
}

}  // namespace

TZ_PROOF(shaw_rel_pos,
         "scores depend only on clipped j - i, equals the explicit formula, any length, decode == forward") {
  Generator gen(13);
  const int64_t K = 3;
  nn::ShawRelativePositions shaw(nn::ShawOptions{.dim = 16, .heads = 2, .layers = 2, .max_distance = K}, gen);
  shaw.to(DType::f64);
  // The score term q_i . a^K_{clip(j - i)} / sqrt(D) against loops, for queries after keys
  // (a cache) and far along; pairs beyond K read exactly the last vector.
  Tensor q = randn({2, 2, 5, 8}, gen, DType::f64), k = randn({2, 2, 11, 8}, gen, DType::f64);
  Tensor ak = shaw.keys(1);
  double formula = 0, shift = 0;
  nn::MixerContext layer1{.layer = 1};
  for (auto [qs, ks] : {std::pair<int64_t, int64_t>{6, 0}, {0, 0}, {100000, 99995}}) {
    Tensor term = shaw.query_score_bias(q, k, qs, ks, &layer1);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t i = 0; i < 5; ++i)
          for (int64_t j = 0; j < 11; ++j) {
            const int64_t r = std::clamp<int64_t>((ks + j) - (qs + i), -K, K) + K;
            double s = 0;
            for (int64_t d = 0; d < 8; ++d) s += q.at({b, h, i, d}) * ak.at({r, d});
            formula = std::max(formula, std::abs(term.at({b, h, i, j}) - s / std::sqrt(8.0)));
          }
    // Shift: the same queries and keys moved by s: the same term.
    for (int64_t s : {1, 1000, 1000000})
      shift = std::max(shift, testing::max_abs_diff(shaw.query_score_bias(q, k, qs + s, ks + s, &layer1), term));
  }
  MESSAGE("shaw_rel_pos: score term vs loops ", formula, ", change under shifts ", shift);
  CHECK(formula < 1e-12);
  CHECK(shift == 0);
  // The value term: one-hot product vs loops.
  Tensor p = softmax(randn({2, 2, 5, 11}, gen, DType::f64));
  CHECK(testing::max_abs_diff(shaw.value_term(p, 6, &layer1), shaw.value_term_ref(p, 6, 1)) < 1e-12);

  // A whole attention layer against the explicit formula (scores and values), at positions
  // 0.. and 1000.. (the same output: only clipped offsets enter), longer than 2K + 1.
  nn::Attention attn(nn::AttentionOptions{.dim = 16, .heads = 2}, gen);
  attn.to(DType::f64);
  Tensor x = randn({2, 12, 16}, gen, DType::f64);
  Tensor y = attn.forward(x, {.start = 0, .pos = &shaw, .layer = 1});
  double explicit_diff = testing::rel_rms(y, shaw_attention_loops(attn, shaw, x, 0, 1));
  double moved = testing::max_abs_diff(attn.forward(x, {.start = 1000, .pos = &shaw, .layer = 1}), y);
  MESSAGE("shaw_rel_pos: attention vs explicit e_ij, z_i loops ", explicit_diff, ", output change at offset 1000 ",
          moved);
  TZ_PROOF_NUMBER("attention vs explicit formula (rel rms)", explicit_diff);
  CHECK(explicit_diff < 1e-12);
  CHECK(moved < 1e-12);
  // Both terms matter: the output moves without positions, and with a^V zeroed.
  CHECK(testing::max_abs_diff(y, attn.forward(x, {})) > 1e-4);
  {
    nn::ShawRelativePositions no_v(shaw.options, gen);
    no_v.to(DType::f64);
    NoGradGuard no_grad;
    core::copy_(no_v.a_k, shaw.a_k);
    core::fill_(no_v.a_v, 0.0);
    CHECK(testing::max_abs_diff(y, attn.forward(x, {.start = 0, .pos = &no_v, .layer = 1})) > 1e-4);
  }

  // Lengths unseen in training: a model trained a few steps at T = 8 runs at 64 (8x): no
  // shape error, finite outputs, and every offset beyond K reads a^K_{-K}, a^V_{-K}.
  auto lm = zoo::make_lm(
      R"({"vocab": 11, "dim": 16, "depth": 2, "heads": 2, "context": 64, "pos": "shaw_rel_pos", "shaw_max_distance": 3})",
      gen);
  optim::Adam adam(lm->named_parameters(), {.lr = 1e-2});
  for (int step = 0; step < 20; ++step) {
    Tensor ids = randint(0, 11, {4, 9}, gen);
    Tensor logits = lm->forward(ids.narrow(1, 0, 8));
    Tensor loss = cross_entropy(logits.reshape({-1, 11}), ids.narrow(1, 1, 8).contiguous().reshape({-1}));
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  {
    NoGradGuard no_grad;
    Tensor long_out = lm->forward(randint(0, 11, {2, 64}, gen));
    CHECK(long_out.shape() == Shape{2, 64, 11});
    CHECK(testing::all_finite(long_out));
  }
  auto* scheme = dynamic_cast<nn::ShawRelativePositions*>(lm->pos.get());
  REQUIRE(scheme);
  CHECK(scheme->a_k.shape() == Shape{2, 2 * K + 1, 8});  // the same 2K + 1 vectors at any length
  // At 64 positions the value term still equals the loops (weights of every key 3 or more
  // back summed onto a^V_{-K}).
  Tensor p64 = softmax(randn({1, 2, 64, 64}, gen, DType::f64));
  scheme->to(DType::f64);
  CHECK(testing::max_abs_diff(scheme->value_term(p64, 0), scheme->value_term_ref(p64, 0, 0)) < 1e-12);

  double d = testing::lm_step_vs_forward(R"({"pos": "shaw_rel_pos", "shaw_max_distance": 3})");
  MESSAGE("shaw_rel_pos: cached decode vs forward, max diff ", d);
  CHECK(d < 1e-10);
  CHECK_THROWS_WITH_AS(nn::ShawRelativePositions(nn::ShawOptions{.dim = 16, .heads = 2, .max_distance = 0}, gen),
                       doctest::Contains("shaw_max_distance"), Error);
}

TZ_PROOF(kerple, "power r2 = 1 is ALiBi's bias exactly, bias depends only on i - j, gradcheck of r1 r2, 2L loss") {
  // Power variant, r2 = 1, r1 = ALiBi's slopes: the table equals ALiBi's (f64).
  Generator gen(11);
  nn::KerplePositions power(nn::KerpleOptions{.heads = 8, .layers = 2, .variant = "power"}, gen);
  power.to(DType::f64);
  power.set(1, nn::alibi_slopes(8), std::vector<double>(8, 1.0));
  nn::ALiBiPositions alibi(8, 8);
  nn::MixerContext layer1{.layer = 1};
  double vs_alibi = 0;
  for (auto [q_offset, T, S] : {std::tuple<int64_t, int64_t, int64_t>{0, 12, 12}, {40, 3, 43}, {999, 1, 1000}})
    vs_alibi = std::max(vs_alibi, testing::max_abs_diff(power.score_bias(8, q_offset, T, S, DType::f64, &layer1),
                                                        alibi.score_bias(8, q_offset, T, S, DType::f64)));
  MESSAGE("kerple: power variant at r2 = 1, r1 = ALiBi slopes vs ALiBi, max diff ", vs_alibi);
  TZ_PROOF_NUMBER("power r2=1 vs ALiBi (max abs)", vs_alibi);
  CHECK(vs_alibi < 1e-12);
  // Not vacuous: r2 = 1.5 differs.
  power.set(1, nn::alibi_slopes(8), std::vector<double>(8, 1.5));
  CHECK(testing::max_abs_diff(power.score_bias(8, 0, 12, 12, DType::f64, &layer1),
                              alibi.score_bias(8, 0, 12, 12, DType::f64)) > 0.1);

  // Log variant against the formula by hand, and as a dense bias: Toeplitz (b_ij = b_{i+1,j+1})
  // and the same for queries renumbered by any offset (only i - j enters).
  nn::KerplePositions klog(nn::KerpleOptions{.heads = 3, .layers = 2}, gen);
  klog.to(DType::f64);
  klog.set(0, {0.5, 1.0, 2.0}, {0.3, 1.0, 4.0});
  Tensor dense = nn::relative_bias_dense(klog.table(0, 7, 5, 12), 5, 12);  // queries at 7..11 over keys 0..11
  double formula = 0, shift = 0;
  const double r1[] = {0.5, 1.0, 2.0}, r2[] = {0.3, 1.0, 4.0};
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j = 0; j < 12; ++j) {
        const double d = std::abs(double(7 + i - j));
        formula = std::max(formula, std::abs(dense.at({h, i, j}) + r1[h] * std::log(1 + r2[h] * d)));
        if (i + 1 < 5 && j + 1 < 12)
          shift = std::max(shift, std::abs(dense.at({h, i, j}) - dense.at({h, i + 1, j + 1})));
      }
  for (int64_t s : {1, 100, 100000}) {  // the same queries and keys, all moved by s
    Tensor moved = nn::relative_bias_dense(klog.table(0, 7 + s, 5, 12 + s), 5, 12 + s).narrow(2, s, 12);
    shift = std::max(shift, testing::max_abs_diff(moved, dense));
  }
  MESSAGE("kerple: log variant vs formula ", formula, ", change under shifts of i and j ", shift);
  CHECK(formula < 1e-12);
  CHECK(shift == 0);
  // An attention layer: the same input at positions 0.. and 100000.. gives the same output.
  nn::Attention attn(nn::AttentionOptions{.dim = 12, .heads = 3}, gen);
  attn.to(DType::f64);
  Tensor x = randn({1, 6, 12}, gen, DType::f64);
  CHECK(testing::max_abs_diff(attn.forward(x, {.start = 0, .pos = &klog}),
                              attn.forward(x, {.start = 100000, .pos = &klog})) < 1e-12);
  CHECK(testing::max_abs_diff(attn.forward(x, {.pos = &klog}), attn.forward(x, {})) > 1e-3);

  // Gradcheck of r1, r2 (through ρ1, ρ2) for both variants, through the table.
  for (nn::KerplePositions* k : {&klog, &power}) {
    auto r = gradcheck([&](const std::vector<Tensor>&) { return k->table(1, 3, 4, 9); }, {k->rho1, k->rho2},
                       {.names = {"rho1", "rho2"}});
    CHECK_MESSAGE(r.ok, r.report);
  }
  // Bad input names the key.
  CHECK_THROWS_WITH_AS(nn::KerplePositions(nn::KerpleOptions{.heads = 2, .variant = "cubic"}, gen),
                       doctest::Contains("kerple_variant"), Error);
  for (const char* cfg :
       {R"({"pos": "kerple", "heads": 4})", R"({"pos": "kerple", "heads": 4, "kerple_variant": "power"})"}) {
    double d = testing::lm_step_vs_forward(cfg);
    MESSAGE("kerple: cached decode vs forward ", std::string(cfg), ", max diff ", d);
    CHECK(d < 1e-10);
  }

  // Extrapolation: trained at L, loss at 2L, against RoPE and learned absolute positions.
  if (!testing::learning_runs()) return;
  auto r = extrapolation_run({{"kerple", R"({"pos": "kerple"})"},
                              {"rope", R"({"pos": "rope"})"},
                              {"learned_abs_pe", R"({"pos": "learned_abs_pe"})"}},
                             "proofs_kerple_arena");
  REQUIRE(r.size() == 3);
  for (const arena::Result& m : r) {
    REQUIRE(m.val_loss.count(2));
    MESSAGE(m.name, ": val loss @1x ", m.val_loss.at(1), ", @2x ", m.val_loss.at(2), " (ratio ",
            m.val_loss.at(2) / m.val_loss.at(1), ")");
  }
  const double kerple_ratio = r[0].val_loss.at(2) / r[0].val_loss.at(1);
  TZ_PROOF_NUMBER("val loss @2L / @L", kerple_ratio);
  CHECK(kerple_ratio <= 1.05);
  CHECK(r[0].val_loss.at(1) < 1.6);  // it uses context (a unigram model is near 2.4): flat for the right reason
  CHECK(r[1].val_loss.at(2) / r[1].val_loss.at(1) > 1.2);  // RoPE, trained identically, degrades
}
