// Proof of the Neural Turing Machine (nn/memory/ntm.h): every weighting is a distribution
// (large γ included), each addressing stage is the paper's equation, the copy task of sec.
// 4.1 is learned and generalises to twice the training length, and decoding token by token
// or continuing a state equals the forward.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/text.h"
#include "data/batch.h"
#include "data/tasks.h"
#include "models/zoo.h"
#include "nn/memory/ntm.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/fit.h"

using namespace tz;

namespace {
constexpr int64_t kC = 12, kN = 7, kW = 5;

std::shared_ptr<nn::NeuralTuringMachine> layer(uint64_t seed = 5) {
  Generator gen(seed);
  auto m = std::make_shared<nn::NeuralTuringMachine>(nn::NtmOptions{.dim = kC, .slots = kN, .width = kW}, gen);
  m->to(DType::f64);
  m->eval();
  return m;
}

// Row sums' largest distance from 1 and the smallest entry of weightings [B, T, N].
std::pair<double, double> distribution_error(const Tensor& w) {
  const Tensor sums = sum(w, {-1});
  return {testing::max_abs_diff(sums, ones_like(sums)), min(w.reshape({-1}), 0).item()};
}

// Plain loops: softmax_i(β cos(k, M_i)) for one batch row b, the norms as sqrt(|x|² + 1e-12).
std::vector<double> content_loops(const Tensor& M, const Tensor& k, double beta, int64_t b) {
  const int64_t N = M.size(1), W = M.size(2);
  std::vector<double> s(size_t(N), 0.0);
  double kk = 0, top = -INFINITY, den = 0;
  for (int64_t d = 0; d < W; ++d) kk += k.at({b, d}) * k.at({b, d});
  for (int64_t i = 0; i < N; ++i) {
    double dot = 0, mm = 0;
    for (int64_t d = 0; d < W; ++d) dot += k.at({b, d}) * M.at({b, i, d}), mm += M.at({b, i, d}) * M.at({b, i, d});
    s[size_t(i)] = beta * dot / std::sqrt((kk + 1e-12) * (mm + 1e-12));  // the norms' epsilon of ntm.cpp
    top = std::max(top, s[size_t(i)]);
  }
  for (double& x : s) den += (x = std::exp(x - top));
  for (double& x : s) x /= den;
  return s;
}

// The copy task of sec. 4.1 as tokens: n random symbols (ids [2, V)), the delimiter (id 1),
// then blanks (id 0) while the model outputs the n symbols; the rest of the T positions are
// blanks that are not scored. The inputs never show the answers. Lengths n in [lo, hi].
data::Batch copy_batch(int64_t B, int64_t lo, int64_t hi, int64_t T, int64_t V, Generator& gen) {
  std::vector<int64_t> x(size_t(B * T), data::kPadToken), y(size_t(B * T), data::kIgnoreIndex);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = gen.randint(lo, hi + 1);
    int64_t* xb = x.data() + b * T;
    int64_t* yb = y.data() + b * T;
    for (int64_t i = 0; i < n; ++i) {
      xb[i] = gen.randint(2, V);
      yb[n + i] = xb[i];  // after reading the delimiter and i blanks: symbol i
    }
    xb[n] = data::kSepToken;
  }
  return {from_vector(x, {B, T}), from_vector(y, {B, T})};
}

struct CopyRun {
  double at_L = 0, at_2L = 0, seconds = 0, loss_first = 0, loss_last = 0;
  int64_t params = 0;
};

// Trains the LM of `config` on copies of 1..L symbols (AdamW, clipped), then scores held-out
// copies of exactly L and 2L symbols: the fraction of output symbols right.
CopyRun copy_run(const std::string& config, int64_t L, int64_t V, int64_t steps, double lr, uint64_t seed) {
  Generator gen(seed);
  auto m = zoo::make_lm(config, gen);
  Generator data(seed + 1000);
  const double t0 = testing::thread_cpu_seconds();
  const auto records =
      train::fit(m->named_parameters(),
                 [&] {
                   data::Batch b = copy_batch(32, 1, L, 2 * L + 1, V, data);
                   return m->loss(b.inputs, b.targets);
                 },
                 {.steps = steps, .recipe = {.lr = lr, .warmup = 50, .schedule = "cosine", .grad_clip = 1.0}});
  CopyRun r{.seconds = testing::thread_cpu_seconds() - t0, .params = m->num_parameters()};
  for (const auto& s : records) {
    if (s.step <= 20) r.loss_first += s.loss / 20;
    if (s.step > steps - 20) r.loss_last += s.loss / 20;
  }
  m->eval();
  NoGradGuard no_grad;
  Generator held(424242);
  const data::Batch at_l = copy_batch(256, L, L, 2 * L + 1, V, held),
                    at_2l = copy_batch(256, 2 * L, 2 * L, 4 * L + 1, V, held);
  r.at_L = data::accuracy(m->forward({at_l.inputs}), at_l.targets);
  r.at_2L = data::accuracy(m->forward({at_2l.inputs}), at_2l.targets);
  return r;
}

}  // namespace

// Every read and write weighting of a random sequence is a distribution: |Σw - 1| <= 1e-12,
// w >= 0, with random parameters and with γ ~ 201 (and the sharpening alone at γ = 1000).
static void weightings_are_distributions() {
  auto m = layer();
  Generator gen(3);
  {
    NoGradGuard no_grad;
    for (auto& [name, p] : m->named_parameters()) core::copy_(p, randn(p.shape(), gen, DType::f64, 0.0, 0.7));
  }
  const Tensor x = randn({3, 25, kC}, gen, DType::f64);
  double worst_sum = 0, lowest = 1;
  auto measure = [&](const char* what) {
    NoGradGuard no_grad;
    nn::NtmState s;
    m->reset(s, 3, DType::f64);
    nn::NtmTrace trace;
    m->run(x, s, &trace);
    const auto [rs, rmin] = distribution_error(trace.read_w);
    const auto [ws, wmin] = distribution_error(trace.write_w);
    const double largest = max(trace.write_w.reshape({-1}), 0).item();
    MESSAGE(std::string(what), ": read weightings |Σw - 1| <= ", rs, ", min w ", rmin, "; write ", ws, ", min w ", wmin,
            "; largest write weight ", largest);
    worst_sum = std::max({worst_sum, rs, ws});
    lowest = std::min({lowest, rmin, wmin});
    CHECK(testing::all_finite(trace.read_w));
    CHECK(testing::all_finite(trace.write_w));
  };
  measure("random parameters (N(0, 0.7))");
  {
    NoGradGuard no_grad;  // γ̂ of both heads at 200: γ ~ 201, β̂ at 40
    for (int64_t off : {int64_t(0), kW + 6})
      m->heads->bias.set({off + kW + 5}, 200.0), m->heads->bias.set({off + kW}, 40.0);
  }
  measure("gamma ~ 201, beta ~ 40");
  // Directly: a weighting with entries down to 1e-300 sharpened at γ = 1000.
  const Tensor w = softmax(randn({4, 9}, gen, DType::f64) * 300.0);
  const auto [ss, smin] = distribution_error(nn::ntm_sharpen(w, full({4, 1}, 1000.0, DType::f64)).unsqueeze(0));
  MESSAGE("sharpening at gamma = 1000 of weights as small as ", min(w.reshape({-1}), 0).item(), ": |Σw - 1| ", ss,
          ", min w ", smin);
  worst_sum = std::max(worst_sum, ss);
  lowest = std::min(lowest, smin);
  CHECK(worst_sum <= 1e-12);
  CHECK(lowest >= 0.0);
}

TEST_CASE("ntm addressing stages are the paper's equations") {
  Generator gen(4);
  const int64_t B = 2, N = 6, W = 4;
  const Tensor M = randn({B, N, W}, gen, DType::f64), key = randn({B, W}, gen, DType::f64);
  const Tensor beta = from_vector(std::vector<double>{0.7, 4.0}, {B, 1});
  const Tensor w_prev = softmax(randn({B, N}, gen, DType::f64));
  const Tensor s_random = softmax(randn({B, 3}, gen, DType::f64));
  auto head = [&](double g, const Tensor& shift) {
    return nn::NtmHead{.key = key,
                       .beta = beta,
                       .gate = full({B, 1}, g, DType::f64),
                       .shift = shift,
                       .gamma = ones({B, 1}, DType::f64)};
  };
  auto shift_of = [&](double minus, double zero, double plus) {
    return from_vector(std::vector<double>{minus, zero, plus, minus, zero, plus}, {B, 3});
  };
  // g = 1, no shift, γ = 1: the content weighting softmax(β cos), against plain loops.
  const Tensor content = nn::ntm_address(M, w_prev, head(1.0, shift_of(0, 1, 0)));
  double content_err = 0;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<double> want = content_loops(M, key, beta.at({b, 0}), b);
    for (int64_t i = 0; i < N; ++i) content_err = std::max(content_err, std::abs(content.at({b, i}) - want[size_t(i)]));
  }
  // g = 0, γ = 1: the previous weighting convolved with s: w̃_i = Σ_j w_j s(i - j mod N).
  const Tensor shifted = nn::ntm_address(M, w_prev, head(0.0, s_random));
  double shift_err = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < N; ++i) {
      double want = 0;
      for (int64_t j = 0; j < N; ++j)
        for (int64_t d = -1; d <= 1; ++d)
          if (((i - j - d) % N + N) % N == 0) want += w_prev.at({b, j}) * s_random.at({b, d + 1});
      shift_err = std::max(shift_err, std::abs(shifted.at({b, i}) - want));
    }
  // s = δ(+1): a rotation by one row, exactly; s = δ(-1): the other way.
  const Tensor up = nn::ntm_shift(w_prev, shift_of(0, 0, 1)), down = nn::ntm_shift(w_prev, shift_of(1, 0, 0));
  double rotate_err = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < N; ++i) {
      rotate_err = std::max(rotate_err, std::abs(up.at({b, (i + 1) % N}) - w_prev.at({b, i})));
      rotate_err = std::max(rotate_err, std::abs(down.at({b, i}) - w_prev.at({b, (i + 1) % N})));
    }
  // Sharpening: w^γ / Σ w^γ against the direct powers (γ = 3).
  const Tensor sharp = nn::ntm_sharpen(w_prev, full({B, 1}, 3.0, DType::f64));
  const Tensor cubed = pow_scalar(w_prev, 3.0);
  const double sharpen_err = testing::max_abs_diff(sharp, cubed / sum(cubed, {-1}, true));
  // Write then read: e = 1, a on row 2 (one-hot w) replaces the row, which reads back.
  Tensor onehot = zeros({B, N}, DType::f64);
  for (int64_t b = 0; b < B; ++b) onehot.set({b, 2}, 1.0);
  const Tensor a = randn({B, W}, gen, DType::f64);
  const Tensor M2 = nn::ntm_write(M, onehot, ones({B, W}, DType::f64), a);
  const double write_err = std::max(testing::max_abs_diff(nn::ntm_read(M2, onehot), a),
                                    testing::max_abs_diff(M2.narrow(1, 3, N - 3), M.narrow(1, 3, N - 3)));
  MESSAGE("g = 1, no shift, gamma = 1 vs softmax(beta cos) by loops: ", content_err,
          "; g = 0 vs the circular convolution of w_{t-1} by loops: ", shift_err,
          "; shift +1 / -1 vs rotation by one row: ", rotate_err, "; sharpening vs w^3 / sum w^3: ", sharpen_err,
          "; erase 1 + add on one row, read back: ", write_err);
  CHECK(content_err <= 1e-14);
  CHECK(shift_err <= 1e-14);
  CHECK(rotate_err == 0.0);
  CHECK(sharpen_err <= 1e-14);
  CHECK(write_err <= 1e-15);
}

TEST_CASE("ntm decoding token by token and continuing a state equal the forward") {
  auto m = layer(7);
  Generator gen(8);
  {
    NoGradGuard no_grad;
    for (auto& [name, p] : m->named_parameters()) core::copy_(p, randn(p.shape(), gen, DType::f64, 0.0, 0.5));
  }
  NoGradGuard no_grad;
  const int64_t B = 2, T = 13;
  const Tensor x = randn({B, T, kC}, gen, DType::f64);
  const Tensor full_y = m->forward(x, nn::MixerContext{});
  auto stepped = m->make_state(B, T, DType::f64), split = m->make_state(B, T, DType::f64);
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < T; ++t) ys.push_back(m->step(x.narrow(1, t, 1), *stepped, {.start = t}));
  const double step = testing::max_abs_diff(cat(ys, 1), full_y);
  const Tensor first = m->forward(x.narrow(1, 0, 5), {.start = 0}, split.get());
  // save and restore mid-sequence into a fresh state, then continue
  auto restored = m->make_state(B, T, DType::f64);
  nn::restore_state(*restored, nn::save_state(*split));
  const Tensor rest = m->forward(x.narrow(1, 5, T - 5), {.start = 5}, restored.get());
  const double cont = testing::max_abs_diff(cat({first, rest}, 1), full_y);
  const auto& a = dynamic_cast<const nn::NtmState&>(*stepped);
  const auto& b = dynamic_cast<const nn::NtmState&>(*restored);
  const double state = std::max({testing::max_abs_diff(a.memory, b.memory), testing::max_abs_diff(a.read_w, b.read_w),
                                 testing::max_abs_diff(a.write_w, b.write_w), testing::max_abs_diff(a.read, b.read)});
  const double lm =
      testing::lm_step_vs_forward(R"({"mixer": "ntm", "pos": "none", "ntm_slots": 5, "ntm_width": 3})", 12);
  MESSAGE("token-by-token decode vs forward ", step, "; 5 tokens, save, restore, 8 more vs forward ", cont,
          "; final states differ by ", state, "; 2-layer LM decode vs forward ", lm);
  CHECK(step <= 1e-13);  // W_x x of one token or of all: another summation order in the GEMM
  CHECK(cont == 0.0);
  CHECK(state <= 1e-13);
  CHECK(lm <= 1e-12);
}

TEST_CASE("ntm names its bad keys") {
  Generator gen(1);
  for (const auto& [bad, says] :
       std::vector<std::pair<std::string, std::string>>{{R"("ntm_slots": 1)", "ntm_slots must be >= 2"},
                                                        {R"("ntm_width": 0)", "ntm_width must be >= 1"},
                                                        {R"("ntm_controller": -1)", "ntm_controller must be >= 0"}})
    CHECK_THROWS_WITH_AS(
        zoo::make_lm(cat_str(R"({"vocab": 11, "dim": 16, "depth": 1, "heads": 2, "mixer": "ntm", )", bad, "}"), gen),
        doctest::Contains(says.c_str()), Error);
}

// The copy task (sec. 4.1) as next-token prediction: 1-block LMs of width 32, vocabulary 10
// (8 symbols: chance 1/8), trained on copies of 1..8 symbols for 1000 steps of 32 (AdamW,
// peak lr 3e-3, cosine, clip 1), scored on copies of exactly 8 and of 16 symbols. The NTM
// (24 rows of width 8, no positions) against the same LM with attention and learned positions
// in its place (gpt): a baseline of the same size without the external memory (the paper: an LSTM).
// Measured (seed 1): ntm 0.98 at 8, 0.95 at 16; gpt 0.61 at 8, 0.24 at 16 (depth 2: 0.59, 0.19).
// Seeds 2 and 3 (TZ_LONG_PROOFS=1): ntm 1.00 and 1.00 at both lengths.
TZ_PROOF(ntm, "weights sum to 1 and learns the copy task and generalises to 2x training length") {
  const int64_t L = 8, V = 10, steps = 1000;
  const double lr = 3e-3, chance = 1.0 / double(V - 2);
  const std::string lm = cat_str(R"({"vocab": )", V, R"(, "dim": 32, "heads": 2, "context": )", 4 * L + 2);
  const std::string ntm = lm + R"(, "depth": 1, "pos": "none", "mixer": "ntm", "ntm_slots": 24, "ntm_width": 8})";
  weightings_are_distributions();
  const std::vector<uint64_t> seeds = testing::long_runs() ? std::vector<uint64_t>{1, 2, 3} : std::vector<uint64_t>{1};
  double worst_L = 1, worst_2L = 1;
  for (uint64_t seed : seeds) {
    const CopyRun r = copy_run(ntm, L, V, steps, lr, seed);
    MESSAGE("ntm (", r.params, " parameters, seed ", seed, "): loss ", r.loss_first, " -> ", r.loss_last, " in ", steps,
            " steps (", r.seconds, " s CPU); copy accuracy at L = ", L, ": ", r.at_L, ", at 2L = ", 2 * L, ": ",
            r.at_2L, " (chance ", chance, ")");
    worst_L = std::min(worst_L, r.at_L);
    worst_2L = std::min(worst_2L, r.at_2L);
  }
  double best_gpt_2L = 0;
  for (int64_t depth : testing::long_runs() ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{1}) {
    const CopyRun g = copy_run(lm + cat_str(R"(, "depth": )", depth, "}"), L, V, steps, lr, 1);
    MESSAGE("gpt baseline (depth ", depth, ", ", g.params, " parameters): loss ", g.loss_first, " -> ", g.loss_last,
            " (", g.seconds, " s CPU); copy accuracy at L ", g.at_L, ", at 2L ", g.at_2L);
    best_gpt_2L = std::max(best_gpt_2L, g.at_2L);
  }
  CHECK(worst_L >= 0.9);
  CHECK(worst_2L >= 0.85);  // chance is 0.125
  CHECK(best_gpt_2L <= worst_2L - 0.3);
  TZ_PROOF_NUMBER("copy accuracy at 2L", worst_2L);
}
