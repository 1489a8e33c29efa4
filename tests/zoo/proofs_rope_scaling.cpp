// Proofs of the RoPE context-extension schemes (nn/position/pi_interpolation.h,
// ntk_aware_rope.h, yarn.h): each is RoPE at s = 1 and changes the angles as its paper says.
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/zoo.h"
#include "nn/position/ntk_aware_rope.h"
#include "nn/position/pi_interpolation.h"
#include "nn/position/rope.h"
#include "nn/position/yarn.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
// The f64 logits [2, 24, 11] of a tiny LM (fixed weights: seed 5, the schemes hold none) with `extra`.
Tensor lm_logits(const std::string& extra) {
  Generator gen(5);
  nn::Config c = nn::Config::parse(R"({"vocab": 11, "dim": 16, "depth": 2, "heads": 2, "context": 32})");
  c.merge(nn::Config::parse(extra));
  auto lm = zoo::make_lm(c, gen);
  lm->to(DType::f64);
  lm->eval();
  NoGradGuard no_grad;
  Generator data(6);
  return lm->forward(randint(0, 11, {2, 24}, data));
}

// max |a - b| of the same id at s = 1 and RoPE, on the same weights and tokens.
double vs_rope(const std::string& extra) {
  return testing::max_abs_diff(lm_logits(extra), lm_logits(R"({"pos": "rope"})"));
}

// The score q·k^T [B, H, T, S] after `pos` rotated q (positions q_start..) and k (k_start..).
Tensor scores(const nn::PositionScheme& pos, Tensor q, Tensor k, int64_t q_start, int64_t k_start) {
  pos.rotate(q, k, q_start, k_start);
  return matmul(q, k.transpose(-1, -2));
}
}  // namespace

TZ_PROOF(pi_interpolation, "s=1 is rope and position m is rotated as RoPE at m L_train / L_target inside [0 L_train)") {
  const double same = vs_rope(R"({"pos": "pi_interpolation", "rope_scale": 1})");
  MESSAGE("pi_interpolation: s = 1 vs rope, max logit diff ", same);
  CHECK(same <= 1e-15);
  // L_train = 16, L_target = 64 (s = 4), D = 64: the angle table of positions 0..63.
  const int64_t L_train = 16, L_target = 64, D = 64, K = D / 2;
  nn::InterpolatedRotary pi(10000.0, double(L_target) / double(L_train));
  const std::vector<double> theta = nn::rotary_frequencies(D, 10000.0);
  Tensor a = pi.angles(0, L_target, D);
  double worst = 0, top = 0;
  for (int64_t m = 0; m < L_target; ++m) {
    const double mp = double(m) * double(L_train) / double(L_target);
    top = std::max(top, mp);
    for (int64_t k = 0; k < K; ++k) worst = std::max(worst, std::abs(a.at({m, k}) - mp * theta[size_t(k)]));
  }
  MESSAGE("pi_interpolation: angles vs RoPE's at m L_train / L_target, max diff ", worst, "; largest m' ", top,
          " < L_train = ", L_train);
  CHECK(worst == 0);
  CHECK(top < double(L_train));
  // At m = s j the rotated vectors are RoPE's at j: PI reuses RoPE's rotation.
  Generator gen(3);
  nn::RotaryPositions rope(10000.0);
  double at_grid = 0;
  for (int64_t j : {1, 5, 15}) {
    Tensor q = randn({1, 2, 1, D}, gen, DType::f64), k = q;
    Tensor qp = q, kp = k, qr = q, kr = k;
    pi.rotate(qp, kp, 4 * j, 0);
    rope.rotate(qr, kr, j, 0);
    at_grid = std::max(at_grid, testing::max_abs_diff(qp, qr));
  }
  MESSAGE("pi_interpolation: rotation at m = 4 j vs RoPE at j, max diff ", at_grid);
  CHECK(at_grid <= 1e-15);
  TZ_PROOF_NUMBER("s = 1 vs rope", same);
  const double d = testing::lm_step_vs_forward(R"({"pos": "pi_interpolation", "rope_scale": 4})", 24);
  MESSAGE("pi_interpolation: cached decode vs forward, max diff ", d);
  CHECK(d < 1e-10);
  CHECK_THROWS_WITH_AS(nn::InterpolatedRotary(10000.0, 0.5), doctest::Contains("rope_scale"), Error);
}

TZ_PROOF(ntk_aware_rope, "s=1 is rope and the fastest pair is unchanged and the slowest slowed by 1/s and dynamic s") {
  const double same = std::max(vs_rope(R"({"pos": "ntk_aware_rope", "rope_scale": 1})"),
                               vs_rope(R"({"pos": "ntk_aware_rope", "ntk_dynamic": true, "rope_train_len": 24})"));
  MESSAGE("ntk_aware_rope: s = 1 (static, and dynamic within L_train) vs rope, max logit diff ", same);
  CHECK(same <= 1e-15);
  for (int64_t D : {8, 64, 128})
    for (double s : {2.0, 4.0, 8.0}) {
      nn::NtkRotary ntk(10000.0, s);
      const std::vector<double> th = nn::rotary_frequencies(D, 10000.0), tn = ntk.frequencies(D, s);
      const size_t last = size_t(D / 2 - 1);
      const double ratio = tn[last] / th[last];
      MESSAGE("ntk_aware_rope: D ", D, " s ", s, ": θ'_0 / θ_0 = ", tn[0] / th[0], ", θ'_last / θ_last = ", ratio,
              " (1/s = ", 1 / s, ")");
      CHECK(tn[0] == th[0]);
      CHECK(std::abs(ratio * s - 1) < 1e-13);
      for (size_t k = 1; k < last; ++k) CHECK((tn[k] < th[k] && tn[k] > th[k] / s));  // in between: interpolated
    }
  {
    nn::NtkRotary ntk(10000.0, 4.0);
    const std::vector<double> th = nn::rotary_frequencies(64, 10000.0), tn = ntk.frequencies(64, 4.0);
    TZ_PROOF_NUMBER("slowest pair θ' s / θ - 1 (D 64 s 4)", tn[31] * 4.0 / th[31] - 1);
  }
  // Dynamic NTK, L_train = 16, D = 8: a short sequence is RoPE; the token at m = 39 uses
  // s = 40 / 16 = 2.5 whether it comes in a forward of 40 tokens or as one decoding step.
  nn::NtkRotary dyn(10000.0, 1.0, 16);
  nn::RotaryPositions rope(10000.0);
  const double short_diff = testing::max_abs_diff(dyn.angles(0, 16, 8), rope.angles(0, 16, 8));
  Tensor forward_row = dyn.angles(0, 40, 8).narrow(0, 39, 1), step_row = dyn.angles(39, 1, 8);
  const std::vector<double> t25 = dyn.frequencies(8, 2.5);
  double want_diff = 0;
  for (int64_t k = 0; k < 4; ++k)
    want_diff = std::max(want_diff, std::abs(step_row.at({0, k}) - 39.0 * t25[size_t(k)]));
  MESSAGE("ntk_aware_rope dynamic (L_train 16): s at m = 0 15 16 39: ", dyn.scale_at(0), " ", dyn.scale_at(15), " ",
          dyn.scale_at(16), " ", dyn.scale_at(39), "; short sequence vs rope angles ", short_diff,
          "; step at m = 39 vs 39 θ'(s = 2.5) ", want_diff, "; vs the forward's row ",
          testing::max_abs_diff(step_row, forward_row), "; vs rope's row ",
          testing::max_abs_diff(step_row, rope.angles(39, 1, 8)));
  CHECK(dyn.scale_at(15) == 1.0);
  CHECK(dyn.scale_at(39) == 2.5);
  CHECK(short_diff == 0);
  CHECK(want_diff == 0);
  CHECK(testing::max_abs_diff(step_row, forward_row) == 0);
  CHECK(testing::max_abs_diff(step_row, rope.angles(39, 1, 8)) > 1e-3);
  for (const char* cfg : {R"({"pos": "ntk_aware_rope", "rope_scale": 4})",
                          R"({"pos": "ntk_aware_rope", "ntk_dynamic": true, "rope_train_len": 8})"}) {
    const double d = testing::lm_step_vs_forward(cfg, 24);
    MESSAGE("ntk_aware_rope ", std::string(cfg), ": cached decode vs forward (24 tokens), max diff ", d);
    CHECK(d < 1e-10);
  }
  CHECK_THROWS_WITH_AS(nn::NtkRotary(10000.0, 0.9), doctest::Contains("rope_scale"), Error);
  CHECK_THROWS_WITH_AS(nn::NtkRotary(10000.0, 2.0, 16), doctest::Contains("conflict"), Error);
  CHECK_THROWS_WITH_AS(lm_logits(R"({"pos": "ntk_aware_rope", "rope_train_len": 16})"),
                       doctest::Contains("ntk_dynamic"), Error);
}

TZ_PROOF(yarn, "s=1 is rope and pairs with r above beta untouched and below alpha slowed by 1/s and the temperature") {
  const double same = vs_rope(R"({"pos": "yarn", "rope_scale": 1, "rope_train_len": 64})");
  MESSAGE("yarn: s = 1 vs rope, max logit diff ", same);
  CHECK(same <= 1e-15);
  TZ_PROOF_NUMBER("s = 1 vs rope", same);
  // D = 64, L_train = 512, s = 4, α = 1, β = 32: every pair in its regime.
  const int64_t D = 64, L = 512;
  const double s = 4.0;
  nn::YarnRotary yarn(10000.0, s, L, 1.0, 32.0);
  const std::vector<double> th = nn::rotary_frequencies(D, 10000.0), ty = yarn.frequencies(D);
  int kept = 0, interp = 0, ramp = 0;
  double ramp_err = 0;
  for (size_t k = 0; k < th.size(); ++k) {
    const double r = double(L) * th[k] / (2 * M_PI);
    if (r > 32) {
      CHECK(ty[k] == th[k]);
      ++kept;
    } else if (r < 1) {
      CHECK(ty[k] == th[k] / s);
      ++interp;
    } else {
      const double g = (r - 1) / 31;
      ramp_err = std::max(ramp_err, std::abs(ty[k] / ((1 - g) * th[k] / s + g * th[k]) - 1));
      CHECK((ty[k] < th[k] && ty[k] > th[k] / s));
      ++ramp;
    }
  }
  MESSAGE("yarn (D 64 L_train 512 s 4): ", kept, " pairs with r > β untouched (exactly), ", interp,
          " with r < α at exactly θ/s, ", ramp, " on the ramp, largest relative error there ", ramp_err);
  CHECK((kept > 0 && interp > 0 && ramp > 0));
  CHECK(ramp_err < 1e-15);
  CHECK(nn::yarn_ramp(0.5, 1, 32) == 0);
  CHECK(nn::yarn_ramp(16.5, 1, 32) == 0.5);
  CHECK(nn::yarn_ramp(40, 1, 32) == 1);
  // The temperature: √(1/t) = 0.1 ln s + 1; the logits of q = k = e_0 at one position are 1/t.
  double temp_err = 0;
  for (double sc : {1.0, 2.0, 4.0, M_E, 16.0, 64.0}) {
    const double want = 0.1 * std::log(sc) + 1;
    temp_err = std::max(temp_err, std::abs(nn::yarn_magnitude(sc) - want));
    nn::YarnRotary y(10000.0, sc, L);
    Tensor e = zeros({1, 1, 1, 8}, DType::f64);
    e.set({0, 0, 0, 0}, 1.0);
    const double logit = scores(y, e, e, 7, 7).item();
    MESSAGE("yarn: s ", sc, ": √(1/t) ", nn::yarn_magnitude(sc), ", 1/t ", want * want, ", logit of e_0 with itself ",
            logit);
    CHECK(std::abs(logit - want * want) < 1e-14);
  }
  CHECK(nn::yarn_magnitude(1.0) == 1.0);
  CHECK(std::abs(nn::yarn_magnitude(M_E) - 1.1) < 1e-15);
  TZ_PROOF_NUMBER("temperature formula error", temp_err);
  const double d = testing::lm_step_vs_forward(R"({"pos": "yarn", "rope_scale": 4, "rope_train_len": 8})", 24);
  MESSAGE("yarn: cached decode vs forward (24 tokens), max diff ", d);
  CHECK(d < 1e-10);
  CHECK_THROWS_WITH_AS(nn::YarnRotary(10000.0, 4.0, 512, 2.0, 1.0), doctest::Contains("yarn_beta"), Error);
  CHECK_THROWS_WITH_AS(nn::YarnRotary(10000.0, 0.5), doctest::Contains("rope_scale"), Error);
}
