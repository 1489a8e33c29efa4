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
