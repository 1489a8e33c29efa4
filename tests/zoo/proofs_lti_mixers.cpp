// Proofs of the EMA, Toeplitz, Monarch and block-state mixers (nn/ssm/mega, megalodon, tnn,
// monarch_mixer, block_state), in f64:
//   - mega, megalodon: the (complex) damped-EMA kernel equals the recurrence unrolled by a
//     plain loop (q multiplied step by step from 1 - σ(a)σ(d)) and the scan's impulse response;
//     the kernel's FFT long convolution equals the recurrent scan (outputs and the gradients of
//     the input and of every EMA parameter); the mixer is causal (within and across its
//     chunks); step decode equals the full forward.
//   - megalodon's timestep norm: outputs up to t do not move when inputs after t change; it
//     equals a plain Welford loop; two chunks continued from the running sums equal one call.
//   - tnn_toeplitz: the Toeplitz matvec by FFT equals the dense T·x (T materialised by a loop
//     from the RPE kernel); causal; decode from the kept history equals the full forward;
//     trained on the built-in text at 64 positions, its loss stays flat at 2x and 4x that
//     length, where the same model with sinusoidal absolute positions does not (its paper's
//     extrapolation claim: the RPE gives finite, decaying coefficients at unseen offsets).
//   - m2_monarch_mixer: the Monarch product equals the dense P^T L P R (each factor
//     materialised as an n x n matrix by its definition, multiplied by plain loops), for square
//     and non-square blocks, and so do its gradients (against matmul with the dense matrix
//     assembled from L, R by differentiable ops); the mixer is causal; decode == forward.
//   - block_state_transformer (SH): block b's outputs do not move when the context states at
//     positions >= bW or < bW - W change, and do move with the state at bW - 1; the layer is
//     causal; decoding one position at a time (SSM recurrence + cached keys) equals the full
//     forward at L = 70 (several 32-key tiles of the fused kernel), and so does the LM's.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <complex>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "models/zoo.h"
#include "nn/registry.h"
#include "nn/ssm/block_state.h"
#include "nn/ssm/mega.h"
#include "nn/ssm/megalodon.h"
#include "nn/ssm/monarch_mixer.h"
#include "nn/ssm/tnn.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/arena.h"

namespace tz::testing {
namespace {

std::shared_ptr<nn::Mega> make_mega(bool complex, int64_t chunk, Generator& gen) {
  const std::string cfg = R"({"mega_ema_dim": 3, "mega_z_dim": 5, "mega_v_dim": 6, "mega_chunk": )" +
                          std::to_string(chunk) + R"(, "megalodon_groups": 2})";
  nn::Config c = nn::Config::parse(cfg);
  nn::ModelDims dims{.dim = 4, .heads = 1, .context = 40, .depth = 1};
  std::shared_ptr<nn::Mega> m = complex ? std::make_shared<nn::Megalodon>(nn::megalodon_options(dims, c), gen)
                                        : std::make_shared<nn::Mega>(nn::mega_options(dims, c), gen);
  m->to(DType::f64);
  return m;
}

// K_ℓ by a plain loop that multiplies the decay step by step (the recurrence unrolled), with
// q = 1 - σ(a)σ(d) formed directly: independent of the log-space formula and of the scan.
Tensor ema_kernel_loop(const nn::Mega& m, int64_t L) {
  const int64_t C = m.options.dim, N = m.options.ema_dim;
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  std::vector<double> k(static_cast<size_t>(C * L), 0.0);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < N; ++j) {
      const double al = sig(m.ema_a.at({c, j})), de = sig(m.ema_d.at({c, j}));
      std::complex<double> step = 1.0 - al * de,
                           eta = m.options.complex
                                     ? std::complex<double>(m.ema_eta.at({c, j, 0}), m.ema_eta.at({c, j, 1}))
                                     : std::complex<double>(m.ema_eta.at({c, j}), 0.0);
      if (m.options.complex) step *= std::polar(1.0, double(j + 1) * 2 * M_PI / double(N) * sig(m.ema_theta.at({c})));
      std::complex<double> h = al * m.ema_beta.at({c, j}) / std::sqrt(double(N));  // h_0 after a unit impulse
      for (int64_t l = 0; l < L; ++l, h *= step) k[size_t(c * L + l)] += (eta * h).real();
    }
  return from_vector(k, {C, L});
}

// The scan's response to a unit impulse at t = 0, minus the skip term: K_t.
Tensor ema_impulse(const nn::Mega& m, int64_t L) {
  const int64_t C = m.options.dim;
  std::vector<double> d(static_cast<size_t>(L * C), 0.0);
  for (int64_t c = 0; c < C; ++c) d[size_t(c)] = 1.0;
  Tensor delta = from_vector(d, {1, L, C});
  Tensor y = m.recur(delta) - delta * m.ema_omega;
  return y.select(0, 0).transpose(0, 1).contiguous();
}

// The EMA's output and the gradients of x and every EMA parameter, by convolution or scan.
std::vector<Tensor> ema_grads(nn::Mega& m, const Tensor& x, const Tensor& w, bool conv) {
  m.zero_grad();
  x.zero_grad();
  Tensor y = conv ? m.convolve(x) : m.recur(x);
  sum(y * w).backward();
  std::vector<Tensor> out{y.detach().contiguous(), x.grad().clone()};
  for (const auto& [name, p] : m.named_parameters()) {
    if (name.rfind("ema_", 0) != 0) continue;
    INFO("parameter ", name);
    REQUIRE(p.grad().defined());
    out.push_back(p.grad().clone());
  }
  return out;
}

struct EmaNumbers {
  double loop = 0, impulse = 0, conv_vs_scan = 0, leak = 0;
};

EmaNumbers ema_proof(bool complex) {
  Generator gen(complex ? 41 : 40);
  auto m = make_mega(complex, 8, gen);
  EmaNumbers r;
  {
    NoGradGuard no_grad;
    const int64_t L = 60;
    Tensor k = m->kernel(L);
    r.loop = rel_rms(k, ema_kernel_loop(*m, L));
    r.impulse = rel_rms(k, ema_impulse(*m, L));
  }
  CHECK(r.loop <= 1e-10);
  CHECK(r.impulse <= 1e-10);
  Tensor x = randn({2, 37, 4}, gen, DType::f64).requires_grad_();
  Tensor w = randn({2, 37, 4}, gen, DType::f64);
  std::vector<Tensor> a = ema_grads(*m, x, w, true), b = ema_grads(*m, x, w, false);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor ", i);
    CHECK(rel_rms(a[i], b[i]) <= 1e-10);
    r.conv_vs_scan = std::max(r.conv_vs_scan, rel_rms(a[i], b[i]));
  }
  // causality of the whole mixer (chunks of 8): changing x after t leaves y up to t
  NoGradGuard no_grad;
  Tensor x0 = x.detach();
  Tensor y = m->forward(x0, {});
  for (int64_t t : {0, 7, 8, 20, 35}) {
    Tensor x2 = x0.clone();
    Tensor tail = x2.narrow(1, t + 1, 37 - t - 1);
    core::copy_(tail, randn(tail.shape(), gen, DType::f64));
    Tensor y2 = m->forward(x2, {});
    r.leak = std::max(r.leak, max_abs_diff(y2.narrow(1, 0, t + 1), y.narrow(1, 0, t + 1)));
    CHECK(max_abs_diff(y2.narrow(1, t + 1, 1), y.narrow(1, t + 1, 1)) > 1e-6);
  }
  CHECK(r.leak <= 1e-12);
  return r;
}

}  // namespace

TZ_PROOF(mega, "damped-EMA kernel == unrolled recurrence, FFT conv == scan (outputs, grads), causal, decode") {
  EmaNumbers r = ema_proof(false);
  const double step = lm_step_vs_forward(R"({"mixer": "mega", "mega_ema_dim": 3, "mega_chunk": 4})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("kernel vs loop ", r.loop, ", vs scan impulse ", r.impulse, "; conv vs scan (rel rms, outputs and grads) ",
          r.conv_vs_scan, "; causal leak ", r.leak, "; step vs forward ", step);
  TZ_PROOF_NUMBER("conv vs scan (rel rms)", r.conv_vs_scan);
}

TZ_PROOF(megalodon, "timestep norm uses positions <= t and == a loop, CEMA kernel == recurrence, conv == scan") {
  EmaNumbers r = ema_proof(true);
  // the timestep norm alone: against the Welford loop, causal, and continued from its sums
  Generator gen(43);
  const int64_t B = 2, T = 23, C = 6, G = 3;
  Tensor x = randn({B, T, C}, gen, DType::f64) * 2.0 + 0.5;
  Tensor one = ones({C}, DType::f64), zero = zeros({C}, DType::f64);
  Tensor y = nn::timestep_norm(x, G, one, zero, nullptr, nullptr, 0);
  std::vector<double> ref(static_cast<size_t>(B * T * C));
  Tensor xc = x.contiguous();
  nn::timestep_norm_ref(ref.data(), xc.data<double>(), B, T, C, G, 1e-5);
  const double vs_loop = rel_rms(y, from_vector(ref, {B, T, C}));
  CHECK(vs_loop <= 1e-12);
  double leak = 0;
  for (int64_t t : {0, 5, 21}) {
    Tensor x2 = x.clone();
    Tensor tail = x2.narrow(1, t + 1, T - t - 1);
    core::copy_(tail, randn(tail.shape(), gen, DType::f64) * 5.0);
    Tensor y2 = nn::timestep_norm(x2, G, one, zero, nullptr, nullptr, 0);
    leak = std::max(leak, max_abs_diff(y2.narrow(1, 0, t + 1), y.narrow(1, 0, t + 1)));
    CHECK(max_abs_diff(y2.narrow(1, t + 1, 1), y.narrow(1, t + 1, 1)) > 1e-6);
  }
  CHECK(leak <= 1e-12);
  Tensor s1 = zeros({B, G}, DType::f64), s2 = zeros({B, G}, DType::f64);
  Tensor first = nn::timestep_norm(x.narrow(1, 0, 9), G, one, zero, &s1, &s2, 0);
  Tensor second = nn::timestep_norm(x.narrow(1, 9, T - 9), G, one, zero, &s1, &s2, 9);
  const double split = rel_rms(cat({first, second}, 1), y);
  CHECK(split <= 1e-12);
  const double step = lm_step_vs_forward(R"({"mixer": "megalodon", "mega_ema_dim": 3, "mega_chunk": 4})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("CEMA kernel vs loop ", r.loop, ", vs scan impulse ", r.impulse, "; conv vs scan ", r.conv_vs_scan,
          "; mixer causal leak ", r.leak, "; timestep norm vs Welford loop ", vs_loop, ", causal leak ", leak,
          ", split vs whole ", split, "; step vs forward ", step);
  TZ_PROOF_NUMBER("conv vs scan (rel rms)", r.conv_vs_scan);
}

TZ_PROOF(tnn_toeplitz, "FFT Toeplitz matvec == dense T x, causal, decode from the history == forward") {
  Generator gen(44);
  nn::Config c = nn::Config::parse(R"({"tnn_expand": 2, "tnn_rpe_dim": 8, "tnn_rpe_layers": 2})");
  nn::Tnn m(nn::tnn_options({.dim = 4, .heads = 1, .context = 32, .depth = 1}, c), gen);
  m.to(DType::f64);
  NoGradGuard no_grad;
  const int64_t B = 2, L = 45, E = 8;
  Tensor k = m.kernel(L, DType::f64).contiguous();  // [E, L]
  Tensor v = randn({B, E, L}, gen, DType::f64);
  Tensor fft = long_conv(v, k);
  // T materialised, T[e, i, j] = t_{e, i - j} (0 above the diagonal), then T v by plain loops
  std::vector<double> dense(static_cast<size_t>(B * E * L), 0.0);
  for (int64_t e = 0; e < E; ++e) {
    std::vector<double> T(static_cast<size_t>(L * L), 0.0);
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j <= i; ++j) T[size_t(i * L + j)] = k.at({e, i - j});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < L; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < L; ++j) acc += T[size_t(i * L + j)] * v.at({b, e, j});
        dense[size_t((b * E + e) * L + i)] = acc;
      }
  }
  const double matvec = rel_rms(fft, from_vector(dense, {B, E, L}));
  CHECK(matvec <= 1e-12);
  // causality of the whole unit
  Tensor x = randn({B, L, 4}, gen, DType::f64);
  Tensor y = m.forward(x, {});
  double leak = 0;
  for (int64_t t : {0, 20, 43}) {
    Tensor x2 = x.clone();
    Tensor tail = x2.narrow(1, t + 1, L - t - 1);
    core::copy_(tail, randn(tail.shape(), gen, DType::f64));
    Tensor y2 = m.forward(x2, {});
    leak = std::max(leak, max_abs_diff(y2.narrow(1, 0, t + 1), y.narrow(1, 0, t + 1)));
    CHECK(max_abs_diff(y2.narrow(1, t + 1, 1), y.narrow(1, t + 1, 1)) > 1e-8);
  }
  CHECK(leak <= 1e-12);
  const double step = lm_step_vs_forward(R"({"mixer": "tnn_toeplitz", "tnn_rpe_dim": 8})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("FFT vs dense Toeplitz matvec (rel rms) ", matvec, "; causal leak ", leak, "; step vs forward ", step);
  TZ_PROOF_NUMBER("FFT vs dense T x (rel rms)", matvec);
}

// The setting of docs/extrapolation.md (the arena's base model, 1000 steps of 16 x 64 bytes),
// with sinusoidal_pe as the contrast: positions it never saw move its loss, not TNN's.
TEST_CASE("tnn_toeplitz: loss on text at 1x 2x and 4x its training length against sinusoidal_pe") {
  if (!learning_runs()) return;
  arena::Options o{.models = {{"tnn_toeplitz", zoo::registry().get("tnn_toeplitz").test_config},
                              {"sinusoidal_pe", zoo::registry().get("sinusoidal_pe").test_config}},
                   .task = "text",
                   .steps = 1000,
                   .batch = 16,
                   .seq_len = 64,
                   .eval_lengths = {1, 2, 4},
                   .threads = 1,
                   .out_dir = std::string(TZ_BINARY_DIR) + "/proofs_tnn_arena"};
  const std::vector<arena::Result> r = arena::run(o);
  REQUIRE(r.size() == 2);
  for (const arena::Result& m : r) {
    for (int64_t k : {1, 2, 4}) REQUIRE(m.val_loss.count(k));
    MESSAGE(m.name, " on text (trained at 64): val loss @1x ", m.val_loss.at(1), ", @2x ", m.val_loss.at(2), ", @4x ",
            m.val_loss.at(4), " (@4x / @1x ", m.val_loss.at(4) / m.val_loss.at(1), ")");
  }
  const auto& tnn = r[0].val_loss;
  const auto& sinusoidal = r[1].val_loss;
  CHECK(tnn.at(1) < 1.0);  // it learned the text (a model that has not is flat trivially)
  CHECK(tnn.at(4) <= tnn.at(1) * 1.10);
  CHECK(sinusoidal.at(4) >= sinusoidal.at(1) * 1.5);
}

namespace {

using Dense = std::vector<double>;  // n x n, row-major
Dense dense_mul(const Dense& a, const Dense& b, int64_t n) {
  Dense c(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) c[size_t(i * n + j)] += a[size_t(i * n + k)] * b[size_t(k * n + j)];
  return c;
}

// P^T L P R with every factor an n x n matrix built from its definition.
Dense monarch_dense(const Tensor& L, const Tensor& R) {
  const int64_t b1 = R.size(0), b2 = L.size(0), n = b1 * b2;
  Dense Rd(size_t(n * n), 0.0), Ld(size_t(n * n), 0.0), P(size_t(n * n), 0.0), PT(size_t(n * n), 0.0);
  for (int64_t i1 = 0; i1 < b1; ++i1)  // block i1 of R: rows and columns i1 b2 ..
    for (int64_t r = 0; r < b2; ++r)
      for (int64_t c = 0; c < b2; ++c) Rd[size_t((i1 * b2 + r) * n + i1 * b2 + c)] = R.at({i1, r, c});
  for (int64_t k2 = 0; k2 < b2; ++k2)  // block k2 of L: rows and columns k2 b1 ..
    for (int64_t r = 0; r < b1; ++r)
      for (int64_t c = 0; c < b1; ++c) Ld[size_t((k2 * b1 + r) * n + k2 * b1 + c)] = L.at({k2, r, c});
  for (int64_t i1 = 0; i1 < b1; ++i1)  // P sends entry i1 b2 + k2 to k2 b1 + i1
    for (int64_t k2 = 0; k2 < b2; ++k2) {
      P[size_t((k2 * b1 + i1) * n + i1 * b2 + k2)] = 1.0;
      PT[size_t((i1 * b2 + k2) * n + k2 * b1 + i1)] = 1.0;
    }
  return dense_mul(PT, dense_mul(Ld, dense_mul(P, Rd, n), n), n);
}

// M assembled from L, R by differentiable ops (entrywise formula), for the gradient check.
Tensor monarch_dense_ops(const Tensor& L, const Tensor& R) {
  const int64_t b1 = R.size(0), b2 = L.size(0);
  // M[k1, k2, i1, i2] = L[k2, k1, i1] R[i1, k2, i2]
  Tensor l = L.permute({1, 0, 2}).unsqueeze(-1);  // [k1, k2, i1, 1]
  Tensor r = R.permute({1, 0, 2}).unsqueeze(0);   // [1, k2, i1, i2]
  return (l * r).reshape({b1 * b2, b1 * b2});
}

double monarch_case(int64_t b1, int64_t b2, Generator& gen, double* grad_err) {
  const int64_t n = b1 * b2;
  Tensor L = randn({b2, b1, b1}, gen, DType::f64).requires_grad_(),
         R = randn({b1, b2, b2}, gen, DType::f64).requires_grad_();
  Tensor x = randn({3, 5, n}, gen, DType::f64).requires_grad_();
  Tensor w = randn({3, 5, n}, gen, DType::f64);
  Tensor y = nn::monarch_multiply(x, L, R);
  Dense M = monarch_dense(L.detach(), R.detach());
  std::vector<double> ref(size_t(15 * n), 0.0);
  for (int64_t m = 0; m < 15; ++m)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) ref[size_t(m * n + i)] += M[size_t(i * n + j)] * x.at({m / 5, m % 5, j});
  const double out = rel_rms(y, from_vector(ref, {3, 5, n}));
  sum(y * w).backward();
  std::vector<Tensor> fast{x.grad().clone(), L.grad().clone(), R.grad().clone()};
  x.zero_grad();
  L.zero_grad();
  R.zero_grad();
  sum(matmul(x, monarch_dense_ops(L, R).transpose(0, 1)) * w).backward();
  *grad_err = std::max({rel_rms(fast[0], x.grad()), rel_rms(fast[1], L.grad()), rel_rms(fast[2], R.grad())});
  return out;
}

}  // namespace

TZ_PROOF(m2_monarch_mixer, "Monarch product == dense P^T L P R multiply (outputs, grads), causal, decode == forward") {
  Generator gen(45);
  double g1 = 0, g2 = 0;
  const double square = monarch_case(4, 4, gen, &g1), oblong = monarch_case(3, 5, gen, &g2);
  CHECK(square <= 1e-12);
  CHECK(oblong <= 1e-12);
  CHECK(std::max(g1, g2) <= 1e-12);
  nn::Config c = nn::Config::parse(R"({"m2_blocks": 2})");
  nn::MonarchMixer m(nn::monarch_mixer_options({.dim = 6, .heads = 1, .context = 40, .depth = 1}, c), gen);
  m.to(DType::f64);
  NoGradGuard no_grad;
  Tensor x = randn({2, 37, 6}, gen, DType::f64);
  Tensor y = m.forward(x, {});
  double leak = 0;
  for (int64_t t : {0, 18, 35}) {
    Tensor x2 = x.clone();
    Tensor tail = x2.narrow(1, t + 1, 37 - t - 1);
    core::copy_(tail, randn(tail.shape(), gen, DType::f64));
    Tensor y2 = m.forward(x2, {});
    leak = std::max(leak, max_abs_diff(y2.narrow(1, 0, t + 1), y.narrow(1, 0, t + 1)));
    CHECK(max_abs_diff(y2.narrow(1, t + 1, 1), y.narrow(1, t + 1, 1)) > 1e-8);
  }
  CHECK(leak <= 1e-12);
  const double step = lm_step_vs_forward(R"({"mixer": "m2_monarch_mixer"})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("Monarch vs dense P^T L P R (rel rms): 4 x 4 ", square, ", 3 x 5 ", oblong, "; grads ", std::max(g1, g2),
          "; causal leak ", leak, "; step vs forward ", step);
  TZ_PROOF_NUMBER("Monarch vs dense (rel rms)", std::max(square, oblong));
}

TZ_PROOF(block_state_transformer, "block b sees only SSM states before its tokens (perturbation), causal, decode") {
  Generator gen(46);
  nn::Config c = nn::Config::parse(R"({"bst_block": 8, "ssm_state": 6})");
  nn::BlockState m(nn::block_state_options({.dim = 8, .heads = 2, .context = 80, .depth = 1}, c), gen);
  m.to(DType::f64);
  NoGradGuard no_grad;
  const int64_t B = 2, L = 70, W = 8;
  Tensor x = randn({B, L, 8}, gen, DType::f64);
  Tensor S = randn({B, L, 8}, gen, DType::f64);
  Tensor y = m.attend(x, S);
  auto moved = [&](int64_t from, int64_t count) {  // perturb S at [from, from + count): block 3's change
    Tensor S2 = S.clone();
    core::copy_(S2.narrow(1, from, count), randn({B, count, 8}, gen, DType::f64));
    return max_abs_diff(m.attend(x, S2).narrow(1, 3 * W, W), y.narrow(1, 3 * W, W));
  };
  const double later = moved(3 * W, L - 3 * W), older = moved(0, 2 * W), previous = moved(3 * W - 1, 1);
  CHECK(later <= 1e-12);
  CHECK(older <= 1e-12);
  CHECK(previous > 1e-6);
  // causal, and decoding one position at a time equals the whole
  Tensor full = m.forward(x, {});
  double leak = 0;
  for (int64_t t : {0, 7, 8, 40, 68}) {
    Tensor x2 = x.clone();
    Tensor tail = x2.narrow(1, t + 1, L - t - 1);
    core::copy_(tail, randn(tail.shape(), gen, DType::f64));
    Tensor y2 = m.forward(x2, {});
    leak = std::max(leak, max_abs_diff(y2.narrow(1, 0, t + 1), full.narrow(1, 0, t + 1)));
    CHECK(max_abs_diff(y2.narrow(1, t + 1, 1), full.narrow(1, t + 1, 1)) > 1e-8);
  }
  CHECK(leak <= 1e-12);
  auto state = m.make_state(B, L, DType::f64);
  std::vector<Tensor> steps;
  for (int64_t t = 0; t < L; ++t) steps.push_back(m.forward(x.narrow(1, t, 1), {.start = t}, state.get()));
  const double decode = rel_rms(cat(steps, 1), full);
  CHECK(decode <= 1e-10);
  const double step = lm_step_vs_forward(R"({"mixer": "block_state_transformer", "bst_block": 4, "ssm_state": 4})", 12);
  CHECK(step <= 1e-9);
  MESSAGE("block 3 vs context states: at >= its start ", later, ", two blocks back ", older, ", just before it ",
          previous, " (moves); causal leak ", leak, "; decode vs forward (L 70) ", decode, "; LM step vs forward ",
          step);
  TZ_PROOF_NUMBER("block's change from later or older states", std::max(later, older));
}

}  // namespace tz::testing
