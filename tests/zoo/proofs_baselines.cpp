// Proofs of the baseline variants (the GPT stack every other variant plugs into).
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "data/tokenizer.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
#include "nn/ffn/mlp.h"
#include "nn/layers.h"
#include "nn/position/absolute.h"
#include "optim/adam.h"
#include "optim/optim.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

TZ_PROOF(gpt, "causal, cached decoding == full forward, overfits a tiny corpus") {
  Generator gen(1);
  auto lm = zoo::make_lm(R"({"dim": 32, "depth": 2, "heads": 2, "context": 48})", gen);
  data::ByteTokenizer tok;
  std::vector<int64_t> text = tok.encode("the cat sees the dogs. the dogs run home.\n");
  const int64_t T = int64_t(text.size()) - 1;
  Tensor ids = from_vector(std::vector<int64_t>(text.begin(), text.end() - 1), {1, T});
  Tensor targets = from_vector(std::vector<int64_t>(text.begin() + 1, text.end()), {1, T});
  optim::AdamW opt(lm->named_parameters(), {.lr = 1e-2, .weight_decay = 0.0});
  double loss = 0;
  for (int step = 0; step < 150; ++step) {
    Tensor l = lm->loss(ids, targets);
    opt.zero_grad();
    l.backward();
    opt.step();
    loss = l.item();
  }
  CHECK(loss < 0.05);  // memorised: next-byte loss near 0 (it starts at ln 256 = 5.5)
  NoGradGuard no_grad;
  TZ_PROOF_NUMBER("memorised loss", loss);
  Tensor full = lm->forward(ids);
  auto state = lm->make_state(1, T);
  for (int64_t t = 0; t < T; ++t)
    CHECK(testing::max_abs_diff(lm->step(ids.narrow(1, t, 1), state), full.narrow(1, t, 1)) < 1e-4);
  // Greedy decoding from the first byte reproduces the memorised text.
  Tensor prompt = ids.narrow(1, 0, 1);
  auto s2 = lm->make_state(1, T);
  Tensor logits = lm->step(prompt, s2);
  std::vector<int64_t> out{text[0]};
  for (int64_t t = 1; t < T; ++t) {
    int64_t next = int64_t(argmax(logits.select(1, 0), -1).item());
    out.push_back(next);
    logits = lm->step(from_vector(std::vector<int64_t>{next}, {1, 1}), s2);
  }
  CHECK(tok.decode(out) == tok.decode(std::vector<int64_t>(text.begin(), text.end() - 1)));
}

TZ_PROOF(vanilla_mha, "matches a naive reference to 1e-6, causal, KV-cache decode == full forward") {
  Generator gen(5);
  nn::Attention attn(nn::AttentionOptions{.dim = 8, .heads = 2}, gen);
  attn.to(DType::f64);
  const int64_t B = 2, T = 6, C = 8, H = 2, D = 4;
  Tensor x = randn({B, T, C}, gen, DType::f64);
  Tensor y = attn.forward(x, {});
  // Naive reference over plain numbers: per head, softmax over keys j <= i.
  Tensor qkv = attn.qkv->forward(x);
  Tensor heads = zeros({B, T, C}, DType::f64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> w(size_t(i + 1));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += qkv.at({b, i, h * D + d}) * qkv.at({b, j, C + h * D + d});
          mx = std::max(mx, w[j] = dot / std::sqrt(double(D)));
        }
        for (auto& v : w) sum += v = std::exp(v - mx);
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j <= i; ++j) acc += w[j] / sum * qkv.at({b, j, 2 * C + h * D + d});
          heads.set({b, i, h * D + d}, acc);
        }
      }
  const double vs_naive = testing::max_abs_diff(y, attn.out->forward(heads));
  CHECK(vs_naive < 1e-6);
  TZ_PROOF_NUMBER("vs naive reference", vs_naive);
  NoGradGuard no_grad;
  auto state = attn.make_state(B, T, DType::f64);
  for (int64_t t = 0; t < T; ++t)
    CHECK(testing::max_abs_diff(attn.step(x.narrow(1, t, 1), *state, {.start = t}), y.narrow(1, t, 1)) < 1e-12);
}

TZ_PROOF(ffn_mlp, "position-wise: permuting positions permutes the outputs") {
  Generator gen(2);
  nn::MLP mlp(nn::MLPOptions{.dim = 6, .hidden = 12}, gen);
  mlp.to(DType::f64);
  Tensor x = randn({2, 5, 6}, gen, DType::f64);
  Tensor perm = from_vector(std::vector<int64_t>{3, 0, 4, 1, 2});
  Tensor y = mlp.forward(x);
  CHECK(testing::max_abs_diff(mlp.forward(index_select(x, 1, perm)), index_select(y, 1, perm)) == 0);
  CHECK(y.shape() == x.shape());
  x.requires_grad_();
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return mlp.forward(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
  TZ_PROOF_NUMBER("gradcheck error", r.max_abs_error);
}

TZ_PROOF(learned_abs_pe, "a clear error beyond the table, gradients reach only the used rows") {
  Generator gen(3);
  nn::LearnedPositions pos(8, 4, gen);
  CHECK_THROWS_WITH_AS(pos.embed(6, 3, DType::f32),
                       "learned_abs_pe: positions 6..8 exceed the 8 learned positions (raise 'context')", Error);
  Tensor p = pos.embed(2, 3, DType::f32);
  sum(p * p).backward();
  Tensor g = pos.table->weight.grad();
  double unused = 0;
  for (int64_t row = 0; row < 8; ++row) {
    double n = 0;
    for (int64_t c = 0; c < 4; ++c) n += std::abs(g.at({row, c}));
    CHECK((row >= 2 && row < 5 ? n > 0 : n == 0));
    if (row < 2 || row >= 5) unused += n;
  }
  TZ_PROOF_NUMBER("gradient on unused rows", unused);
  auto lm = zoo::make_lm(R"({"dim": 8, "depth": 1, "heads": 2, "context": 4, "vocab": 10})", gen);
  CHECK_THROWS_WITH_AS(lm->forward(zeros({1, 5}, DType::i64)), doctest::Contains("exceed the 4 positions"), Error);
}

TZ_PROOF(sinusoidal_pe, "PE(i + delta) is a fixed rotation of PE(i) for every i, any length") {
  const int64_t C = 8;
  Tensor pe = nn::sinusoidal_table(0, 300, C, 10000.0, DType::f64);
  for (int64_t delta : {1, 7, 50}) {
    // For each frequency pair (sin, cos), shifting by delta is a 2x2 rotation by delta * freq,
    // the same matrix for every position i.
    for (int64_t k = 0; k < C / 2; ++k) {
      double f = std::pow(10000.0, -double(2 * k) / double(C));
      double c = std::cos(delta * f), s = std::sin(delta * f);
      for (int64_t i = 0; i + delta < 300; i += 13) {
        double si = pe.at({i, 2 * k}), ci = pe.at({i, 2 * k + 1});
        CHECK(pe.at({i + delta, 2 * k}) == doctest::Approx(si * c + ci * s).epsilon(1e-9));
        CHECK(pe.at({i + delta, 2 * k + 1}) == doctest::Approx(ci * c - si * s).epsilon(1e-9));
      }
    }
  }
  // Any length: the scheme's embedding at positions 100000.. against the closed form
  // g sin(i / 10000^(2k/C)), g cos(i / 10000^(2k/C)), written out here.
  nn::SinusoidalPositions pos(C);
  CHECK(pos.max_positions() == 0);
  pos.to(DType::f64);
  Tensor far = pos.embed(100000, 2, DType::f64);
  const double g = pos.gain.item();
  CHECK(g == doctest::Approx(0.02).epsilon(1e-7));  // its init, stored in f32
  double worst = 0;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t k = 0; k < C / 2; ++k) {
      double angle = double(100000 + i) / std::pow(10000.0, double(2 * k) / double(C));
      worst = std::max(worst, std::abs(far.at({i, 2 * k}) - g * std::sin(angle)));
      worst = std::max(worst, std::abs(far.at({i, 2 * k + 1}) - g * std::cos(angle)));
    }
  CHECK(worst < 1e-12);
  TZ_PROOF_NUMBER("embedding at 1e5 vs closed form", worst);
}

namespace {
// Gradient norm of the last block's FFN output projection at initialisation (Xavier-like
// init, unit-variance branches as in the analysis), averaged over a few seeds.
double last_ffn_grad_norm(const std::string& placement, int64_t depth) {
  double total = 0;
  for (uint64_t seed = 0; seed < 3; ++seed) {
    Generator gen(4 + seed);
    auto lm = zoo::make_lm(cat_str(R"({"dim": 32, "heads": 2, "context": 16, "vocab": 32, "depth": )", depth,
                                   R"(, "norm_placement": ")", placement, "\"}"),
                           gen);
    for (auto& [name, t] : lm->named_parameters())
      if (t.dim() == 2) core::copy_(t, randn(t.shape(), gen, DType::f32, 0.0, 1.0 / std::sqrt(double(t.size(1)))));
    Generator data(9 + seed);
    Tensor ids = randint(0, 32, {4, 16}, data), targets = randint(0, 32, {4, 16}, data);
    lm->loss(ids, targets).backward();
    std::string last = cat_str("layers.", depth - 1, ".ffn.proj.weight");
    for (auto& [name, t] : lm->named_parameters())
      if (name == last) {
        double s2 = 0;
        for (double v : t.grad().to_vector<double>()) s2 += v * v;
        total += std::sqrt(s2) / 3;
      }
  }
  return total;
}
}  // namespace

// Xiong et al. 2020 (arXiv:2002.04745), Theorem 1: at initialisation the gradient of the
// last FFN layer is O(d sqrt(ln d)) for post-LN but O(d sqrt(ln d / L)) for pre-LN, so the
// post/pre ratio grows like sqrt(L) with depth (post-LN needs a warm-up; pre-LN does not).
TZ_PROOF(pre_post_norm,
         "both selectable, post-LN's last-layer gradient exceeds pre-LN's by a factor growing with depth") {
  double r6 = last_ffn_grad_norm("post", 6) / last_ffn_grad_norm("pre", 6);
  double r24 = last_ffn_grad_norm("post", 24) / last_ffn_grad_norm("pre", 24);
  MESSAGE("last-layer FFN gradient norm, post-LN / pre-LN: depth 6 ", r6, ", depth 24 ", r24,
          " (theory: ratio grows like sqrt(L), i.e. x2 from 6 to 24)");
  TZ_PROOF_NUMBER("ratio growth depth 6 -> 24", r24 / r6);
  CHECK(r6 > 1.0);
  CHECK(r24 > 1.4 * r6);
}

TZ_PROOF(rmsnorm, "invariant to input rescaling, equals LayerNorm without bias on zero-mean input") {
  nn::RMSNorm rms(nn::NormOptions{.dim = 6, .eps = 1e-300});
  nn::LayerNorm ln(nn::NormOptions{.dim = 6, .eps = 1e-300, .bias = false});
  rms.to(DType::f64);
  ln.to(DType::f64);
  Generator gen(6);
  Tensor x = randn({3, 6}, gen, DType::f64);
  CHECK(testing::rel_rms(rms.forward(x * 37.5), rms.forward(x)) < 1e-12);
  Tensor centred = x - mean(x, {-1}, true);
  const double vs_ln = testing::rel_rms(rms.forward(centred), ln.forward(centred));
  CHECK(vs_ln < 1e-12);
  TZ_PROOF_NUMBER("vs LayerNorm on zero-mean input", vs_ln);
}

TZ_PROOF(layernorm, "outputs have zero mean and unit variance per row before the gain") {
  nn::LayerNorm ln(nn::NormOptions{.dim = 16});
  ln.to(DType::f64);
  Generator gen(8);
  Tensor y = ln.forward(randn({4, 16}, gen, DType::f64, 3.0, 5.0));
  double worst_mean = 0;
  for (int64_t r = 0; r < 4; ++r) {
    worst_mean = std::max(worst_mean, std::abs(mean(y.select(0, r)).item()));
    CHECK(var(y.select(0, r), 0, 0).item() == doctest::Approx(1.0).epsilon(1e-4));
  }
  CHECK(worst_mean < 1e-12);
  TZ_PROOF_NUMBER("max |row mean|", worst_mean);
}

TZ_PROOF(none, "no position terms at all: a 1-layer LM's last output is invariant to permuting the earlier tokens") {
  Generator gen(12);
  auto nope = zoo::make_lm(R"({"vocab": 16, "dim": 16, "depth": 1, "heads": 2, "context": 12, "pos": "none"})", gen);
  Generator gen2(12);
  auto learned = zoo::make_lm(R"({"vocab": 16, "dim": 16, "depth": 1, "heads": 2, "context": 12})", gen2);
  CHECK(nope->pos->num_parameters() == 0);
  CHECK_FALSE(nope->pos->embed(0, 4, DType::f32).defined());
  CHECK_FALSE(nope->pos->rotates());
  CHECK_FALSE(nope->pos->biases_scores());
  nope->to(DType::f64);
  learned->to(DType::f64);
  nope->eval();
  learned->eval();
  NoGradGuard ng;
  Tensor ids = from_vector(std::vector<int64_t>{3, 9, 1, 14, 7, 5, 2, 11}, {1, 8});
  Tensor perm = from_vector(std::vector<int64_t>{14, 1, 7, 3, 2, 9, 5, 11}, {1, 8});  // same tokens, last kept
  auto last = [](const Tensor& y) { return y.select(1, 7); };
  double d_nope = testing::max_abs_diff(last(nope->forward(ids)), last(nope->forward(perm)));
  double d_learned = testing::max_abs_diff(last(learned->forward(ids)), last(learned->forward(perm)));
  MESSAGE("last logits moved by ", d_nope, " without positions, by ", d_learned, " with learned positions");
  CHECK(d_nope < 1e-14);
  CHECK(d_learned > 1e-6);
}
