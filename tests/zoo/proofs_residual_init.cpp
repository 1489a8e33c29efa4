// Proofs of the normaliser-free residual, the bottom-to-top skip and the depth-scaled
// initialisation (nn/residual/skipinit.cpp, nn/residual/b2t.cpp, models/weight_init.h):
// skipinit, b2t_residual, ds_init.
#include <cmath>
#include <map>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/zoo.h"
#include "nn/layers.h"
#include "optim/adam.h"
#include "optim/optim.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
const char* kBase = R"("vocab": 16, "heads": 2, "context": 24)";

std::unique_ptr<models::LM> lm(const std::string& extra, uint64_t seed = 1) {
  Generator gen(seed);
  return zoo::make_lm(std::string("{") + kBase + ", " + extra + "}", gen);
}

Tensor ids_of(uint64_t seed, int64_t B = 4, int64_t T = 16) {
  Generator g(seed);
  return randint(0, 16, {B, T}, g);
}

double variance(const Tensor& t) {
  const std::vector<double> v = t.to(DType::f64).contiguous().to_vector<double>();
  double mean = 0, sq = 0;
  for (double x : v) mean += x / double(v.size());
  for (double x : v) sq += (x - mean) * (x - mean) / double(v.size());
  return sq;
}

// The residual stream after the last block ("final_norm": "none", read by the feature tap),
// over its value after the embedding: how much variance the blocks add at init.
double stream_growth(models::LM& m, const Tensor& ids) {
  NoGradGuard ng;
  m.eval();
  Tensor stream;
  m.feature_tap = [&](const Tensor& x) { stream = x; };
  m.forward(ids);
  m.feature_tap = nullptr;
  return variance(stream) / variance(m.embed(ids, 0));
}

}  // namespace

TZ_PROOF(skipinit, "identity at init, ReZero's module, α0 = 1/√depth keeps a deep unnormalised stream bounded") {
  // α0 = 0: every block is the identity, and the model is ReZero's, bit for bit.
  auto skip = lm(R"("dim": 16, "depth": 8, "residual": "skipinit")");
  auto rezero = lm(R"("dim": 16, "depth": 8, "residual": "rezero")");
  CHECK(skip->norm_f == nullptr);
  {
    NoGradGuard ng;
    skip->eval(), rezero->eval();
    Tensor ids = ids_of(3);
    Tensor direct = linear(skip->embed(ids, 0), skip->tok_emb->weight);
    const double identity = testing::max_abs_diff(skip->forward(ids), direct);
    const double same = testing::max_abs_diff(skip->forward(ids), rezero->forward(ids));
    MESSAGE("skipinit α0 = 0, depth 8: |logits - emb W^T| = ", identity, ", |skipinit - rezero| = ", same);
    CHECK(identity == 0.0);
    CHECK(same == 0.0);
  }
  // Without norms, the plain sum x + f(x) (α0 = 1) multiplies the stream's variance at every
  // block; α0 = 1/√depth (the paper's alternative to 0) keeps the growth bounded. The branches
  // get Glorot's init, which keeps a branch's output variance of its input's order (with
  // GPT-2's N(0, 0.02) a branch adds almost nothing at init, norms or not).
  const Tensor ids = ids_of(4);
  std::map<int64_t, double> plain, scaled;
  for (int64_t depth : {4, 16, 64}) {
    const std::string d =
        cat_str(R"("dim": 32, "final_norm": "none", "init": "xavier", "residual": "skipinit", "depth": )", depth);
    auto a = lm(d + R"(, "skipinit_alpha": 1.0)");
    auto b = lm(d + cat_str(R"(, "skipinit_alpha": )", 1.0 / std::sqrt(double(depth))));
    plain[depth] = stream_growth(*a, ids);
    scaled[depth] = stream_growth(*b, ids);
    MESSAGE("depth ", depth, ": stream variance / embedding variance at init: α0 = 1 ", plain[depth],
            ", α0 = 1/√depth ", scaled[depth]);
  }
  TZ_PROOF_NUMBER("depth-64 variance growth, α0 = 1/√depth", scaled[64]);
  CHECK(plain[64] > 4 * plain[4]);     // the unscaled sum keeps growing with depth
  CHECK(scaled[64] < 2 * scaled[4]);   // the scaled one hardly moves from 4 to 64 blocks
  CHECK(scaled[64] < plain[64] / 10);  // and ends far below
}

TZ_PROOF(b2t_residual, "the block equations. At depth 18 it trains faster than pre-LN and post-LN") {
  // One block against its equations: h = LN(x + Attn(x)), y = LN(h + FFN(h) + x).
  {
    auto m = lm(R"("dim": 16, "depth": 1, "residual": "b2t")");
    CHECK(m->norm_f == nullptr);
    m->eval();
    NoGradGuard ng;
    Tensor ids = ids_of(5, 2, 12);
    Tensor x = m->embed(ids, 0);
    const models::Block& block = *m->layers->at<models::Block>(0);
    const auto& s1 = block.sublayers[0];
    const auto& s2 = block.sublayers[1];
    nn::MixerContext ctx{.pos = m->pos.get()};
    Tensor h = s1.norm->forward(x + s1.mixer->forward(x, ctx, nullptr));
    Tensor y = s2.norm->forward(h + s2.ffn->forward(h) + x);
    const double d = testing::max_abs_diff(m->forward(ids), linear(y, m->tok_emb->weight));
    MESSAGE("b2t block vs its equations: ", d);
    CHECK(d < 1e-5);
  }
  // Depth 18 (the paper's Figure 1 setting, where post-LN stops training stably), Glorot
  // init as in fairseq, 100 AdamW steps memorising one batch, 3 seeds: the mean final loss.
  // The paper explains post-LN's trouble by vanishing gradients in the lower layers; at this
  // width and step count the per-block gradient norms of post-LN do not vanish (blocks 1-16
  // stay within 2x of each other), so the proof is the training claim itself.
  if (!testing::learning_runs()) return;  // 900 training steps: the release pass's
  const Tensor ids = ids_of(6), targets = ids_of(7);
  std::map<std::string, double> loss;
  for (std::string kind : {R"("norm_placement": "pre")", R"("norm_placement": "post")", R"("residual": "b2t")"}) {
    for (uint64_t seed : {1, 2, 3}) {
      auto m = lm(cat_str(R"("dim": 32, "depth": 18, "init": "xavier", )", kind), seed);
      optim::AdamW opt(m->named_parameters(), {.lr = 1e-3, .weight_decay = 0.0});
      double last = 0;
      for (int s = 0; s < 100; ++s) {
        Tensor l = m->loss(ids, targets);
        opt.zero_grad();
        l.backward();
        opt.step();
        last = l.item();
      }
      loss[kind] += last / 3;
    }
    MESSAGE(kind, ": mean loss after 100 steps at depth 18 = ", loss[kind], " (from ln 16 = 2.77)");
  }
  const double pre = loss[R"("norm_placement": "pre")"], post = loss[R"("norm_placement": "post")"],
               b2t = loss[R"("residual": "b2t")"];
  TZ_PROOF_NUMBER("depth-18 loss after 100 steps, b2t / pre-LN", b2t / pre);
  CHECK(b2t < 0.85 * pre);  // lower than pre-LN
  CHECK(b2t < 0.6 * post);  // and far below post-LN
}

TZ_PROOF(ds_init,
         "each layer's weights have variance α²·2/(in+out)/l. The stream grows like log(depth) and xavier's linearly") {
  // Block l's Linear weights against U(±γ_l): variance γ_l² / 3 = α² · 2 / ((in + out) l).
  auto m = lm(R"("dim": 64, "depth": 6, "init": "ds_init", "ds_init_alpha": 0.8)");
  double worst = 0;
  for (size_t l = 0; l < m->layers->size(); ++l) {
    double sum_sq = 0, expected = 0, n = 0;
    for (auto& [name, p] : m->layers->at<models::Block>(l)->named_parameters()) {
      if (p.dim() != 2 || name.find("weight") == std::string::npos) continue;
      const double fan = double(p.size(0) + p.size(1)), count = double(p.numel());
      for (double w : p.to(DType::f64).contiguous().to_vector<double>()) sum_sq += w * w;
      expected += count * 0.64 * 2.0 / fan / double(l + 1);
      n += count;
    }
    REQUIRE(n > 0);
    const double rel = std::abs(sum_sq / expected - 1);
    MESSAGE("layer ", l + 1, ": weight variance / formula = ", sum_sq / expected, " over ", n, " weights");
    worst = std::max(worst, rel);
  }
  TZ_PROOF_NUMBER("worst |variance / formula - 1| over 6 layers", worst);
  CHECK(worst < 0.02);

  // Pre-LN stream variance added by the blocks at init, depth 4 → 32: xavier adds about the
  // same per block (linear growth), ds_init about 1/l of it (harmonic: log growth).
  const Tensor ids = ids_of(8);
  std::map<int64_t, double> xavier, ds;
  for (int64_t depth : {4, 32}) {
    const std::string d = cat_str(R"("dim": 32, "final_norm": "none", "depth": )", depth);
    auto a = lm(d + R"(, "init": "xavier")");
    auto b = lm(d + R"(, "init": "ds_init")");
    xavier[depth] = stream_growth(*a, ids) - 1;
    ds[depth] = stream_growth(*b, ids) - 1;
    MESSAGE("depth ", depth, ": added variance / embedding variance: xavier ", xavier[depth], ", ds_init ", ds[depth]);
  }
  const double xavier_growth = xavier[32] / xavier[4], ds_growth = ds[32] / ds[4];
  MESSAGE("depth 4 → 32 (8x): xavier x", xavier_growth, ", ds_init x", ds_growth,
          " (the harmonic sums' ratio H_32 / H_4 is 1.95)");
  TZ_PROOF_NUMBER("ds_init variance growth depth 4 -> 32", ds_growth);
  CHECK(xavier_growth > 5);  // about linear: 8x the depth
  CHECK(ds_growth < 3);      // sub-linear
  // Bad keys are refused by name.
  CHECK_THROWS_WITH_AS(lm(R"("dim": 16, "depth": 1, "init": "he")"), doctest::Contains("init must be"), Error);
  CHECK_THROWS_WITH_AS(lm(R"("dim": 16, "depth": 1, "init": "ds_init", "ds_init_alpha": 2)"),
                       doctest::Contains("ds_init_alpha"), Error);
  CHECK_THROWS_WITH_AS(lm(R"("dim": 16, "depth": 1, "ds_init_alpha": 0.5)"), doctest::Contains("ds_init_alpha"), Error);
}
