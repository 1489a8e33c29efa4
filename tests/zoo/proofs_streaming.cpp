// Proofs of the training-free long-input decoders (nn/attention/features/position_remap.h):
// streaming_llm, lm_infinite and selfextend. Each layer is checked against a plain-loop
// reference written from its paper (the mask and the relative position of every pair), its
// decoding against its forward, and its bound (cache size, largest distance) with numbers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "data/grammar.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
#include "nn/attention/features/lm_infinite.h"
#include "nn/attention/features/selfextend.h"
#include "nn/attention/features/streaming_llm.h"
#include "nn/position/alibi.h"
#include "nn/position/ntk_aware_rope.h"
#include "nn/position/rope.h"
#include "nn/position/xpos.h"
#include "optim/adam.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
constexpr int64_t kC = 16, kH = 2, kD = kC / kH;

// The relative position of the pair (i, j) per the paper, or -1 when the key is hidden.
using PairRule = std::function<int64_t(int64_t i, int64_t j)>;

// An f64 attention layer (dim 16, 2 heads) with the feature keys of `extra`.
std::shared_ptr<nn::Attention> layer(const std::string& extra, uint64_t seed = 3) {
  Generator gen(seed);
  nn::ModelDims dims{.dim = kC, .heads = kH, .context = 1024, .depth = 1};
  auto a = std::make_shared<nn::Attention>(nn::attention_options(dims, nn::Config::parse(extra)), gen);
  a->to(DType::f64);
  a->eval();
  return a;
}

// Plain loops: q, k, v = x W + b, un-rotated; the score of a visible pair (i, j) at relative
// position d = rule(i, j) is q_i . R(d) k_j / sqrt(D) with RoPE's R (rotate q_i by d θ);
// softmax over the visible keys; heads merged; W_o.
Tensor reference(const nn::Attention& a, const Tensor& x, const PairRule& rule, const nn::RotaryPositions& rope) {
  const int64_t B = x.size(0), T = x.size(1);
  const std::vector<double> X = x.contiguous().to_vector<double>();
  const std::vector<double> W = a.qkv->weight.contiguous().to_vector<double>(), bW = a.qkv->bias.to_vector<double>();
  const std::vector<double> O = a.out->weight.contiguous().to_vector<double>(), bO = a.out->bias.to_vector<double>();
  const std::vector<double> theta = nn::rotary_frequencies(kD, rope.base);
  std::vector<double> y(size_t(B * T * kC), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> p(size_t(T * 3 * kC));  // [T, q | k | v]
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < 3 * kC; ++r) {
        double acc = bW[size_t(r)];
        for (int64_t c = 0; c < kC; ++c) acc += W[size_t(r * kC + c)] * X[size_t((b * T + t) * kC + c)];
        p[size_t(t * 3 * kC + r)] = acc;
      }
    std::vector<double> merged(size_t(T * kC), 0.0);
    for (int64_t h = 0; h < kH; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const double* q = &p[size_t(i * 3 * kC + h * kD)];
        std::vector<double> s(size_t(T), -std::numeric_limits<double>::infinity());
        double top = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t d = rule(i, j);
          if (d < 0) continue;
          const double* k = &p[size_t(j * 3 * kC + kC + h * kD)];
          double dot = 0;
          for (int64_t m = 0; m < kD / 2; ++m) {  // (R(d) q) . k
            const double c = std::cos(double(d) * theta[size_t(m)]), sn = std::sin(double(d) * theta[size_t(m)]);
            const double q0 = c * q[2 * m] - sn * q[2 * m + 1], q1 = sn * q[2 * m] + c * q[2 * m + 1];
            dot += q0 * k[2 * m] + q1 * k[2 * m + 1];
          }
          s[size_t(j)] = dot / std::sqrt(double(kD));
          top = std::max(top, s[size_t(j)]);
        }
        double z = 0;
        for (int64_t j = 0; j <= i; ++j) z += std::exp(s[size_t(j)] - top);
        for (int64_t j = 0; j <= i; ++j) {
          const double w = std::exp(s[size_t(j)] - top) / z;
          for (int64_t e = 0; e < kD; ++e)
            merged[size_t(i * kC + h * kD + e)] += w * p[size_t(j * 3 * kC + 2 * kC + h * kD + e)];
        }
      }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < kC; ++r) {
        double acc = bO[size_t(r)];
        for (int64_t c = 0; c < kC; ++c) acc += O[size_t(r * kC + c)] * merged[size_t(t * kC + c)];
        y[size_t((b * T + t) * kC + r)] = acc;
      }
  }
  return from_vector(y, {B, T, kC});
}

// |forward - reference| of a layer with `extra` on T tokens.
double vs_reference(const std::string& extra, const PairRule& rule, int64_t T) {
  auto a = layer(extra);
  nn::RotaryPositions rope(10000.0);
  Generator gen(4);
  Tensor x = randn({2, T, kC}, gen, DType::f64);
  NoGradGuard ng;
  return testing::max_abs_diff(a->forward(x, {.pos = &rope}), reference(*a, x, rule, rope));
}

// The largest |decode - forward| of a layer: token by token, and a prefill of `prefill`
// tokens continued in chunks of 3; `cache` receives the state's key buffer length.
double layer_decode_vs_forward(const std::string& extra, int64_t T, int64_t prefill, int64_t* cache = nullptr) {
  auto a = layer(extra);
  nn::RotaryPositions rope(10000.0);
  Generator gen(5);
  Tensor x = randn({2, T, kC}, gen, DType::f64);
  NoGradGuard ng;
  Tensor full = a->forward(x, {.pos = &rope});
  double worst = 0;
  for (int64_t first : {int64_t(1), prefill}) {
    auto st = a->make_state(2, T, DType::f64);
    for (int64_t t = 0; t < T;) {
      const int64_t n = t == 0 ? first : std::min<int64_t>(first == 1 ? 1 : 3, T - t);
      Tensor y = a->forward(x.narrow(1, t, n), {.start = t, .pos = &rope}, st.get());
      worst = std::max(worst, testing::max_abs_diff(y, full.narrow(1, t, n)));
      t += n;
    }
    if (cache) *cache = dynamic_cast<nn::KVState&>(*st).k.size(2);
  }
  return worst;
}

// The largest relative position a rule uses over the visible pairs of T positions.
int64_t max_distance(const nn::RemapRule& r, int64_t T) {
  int64_t top = 0;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j)
      if (r.visible(i, j)) top = std::max(top, r.distance(i, j));
  return top;
}

// The paper's rolling cache for query i: sinks 0..s-1, then the w most recent tokens
// (i's own last), each at its slot in that list; -1 for an evicted key.
PairRule rolling_cache(int64_t s, int64_t w) {
  return [s, w](int64_t i, int64_t j) -> int64_t {
    std::vector<int64_t> cache;
    for (int64_t p = 0; p <= i; ++p)
      if (p < s || p > i - w) cache.push_back(p);
    auto at = std::find(cache.begin(), cache.end(), j);
    if (at == cache.end()) return -1;
    return int64_t(cache.size()) - 1 - int64_t(at - cache.begin());  // slot(i) - slot(j)
  };
}
}  // namespace

namespace {
// ---- the paper's claim: a model trained at L read far beyond L ---------------------------

struct SinkRun {
  double train_loss = 0;                    // mean of the last 20 training steps
  double in_length = 0;                     // held-out loss at positions [0, L), full attention
  double sinks = 0, window = 0, dense = 0;  // held-out loss at positions [L, 10 L)
  double seconds = 0;
};

// Byte windows [B, n + 1] of `text` at random offsets: inputs and next-byte targets.
std::pair<Tensor, Tensor> windows(const std::string& text, int64_t B, int64_t n, Generator& gen) {
  std::vector<int64_t> x(size_t(B * n)), y(size_t(B * n));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o = gen.randint(0, int64_t(text.size()) - n - 1);
    for (int64_t t = 0; t < n; ++t) {
      x[size_t(b * n + t)] = static_cast<unsigned char>(text[size_t(o + t)]);
      y[size_t(b * n + t)] = static_cast<unsigned char>(text[size_t(o + t + 1)]);
    }
  }
  return {from_vector(x, {B, n}), from_vector(y, {B, n})};
}

// Mean next-byte loss per position [n] of logits [B, n, V].
std::vector<double> loss_per_position(const Tensor& logits, const Tensor& targets) {
  const int64_t B = logits.size(0), n = logits.size(1), V = logits.size(2);
  const std::vector<double> lp = log_softmax(logits.to(DType::f64)).contiguous().to_vector<double>();
  const std::vector<int64_t> y = targets.to_vector<int64_t>();
  std::vector<double> out(size_t(n), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < n; ++t) out[size_t(t)] -= lp[size_t((b * n + t) * V + y[size_t(b * n + t)])] / double(B);
  return out;
}

double mean_over(const std::vector<double>& v, int64_t from, int64_t to) {
  double s = 0;
  for (int64_t t = from; t < to; ++t) s += v[size_t(t)];
  return s / double(to - from);
}

// A rope LM (dim 64, depth 2, heads 4, bytes) trained on the grammar text at L positions for
// `steps` AdamW steps, then read on held-out windows of 10 L: token by token with sinks 4 +
// window L - 4 (a cache of L) and with a window of L alone, and by a dense forward.
SinkRun sink_experiment(int64_t L, int64_t steps) {
  const int64_t N = 10 * L, B = 16, Beval = 4;
  const std::string base =
      cat_str(R"({"vocab": 256, "dim": 64, "depth": 2, "heads": 4, "pos": "rope", "context": )", N);
  const auto t0 = std::chrono::steady_clock::now();
  Generator gen(1);
  auto m = zoo::make_lm(base + "}", gen);
  const std::string text = data::grammar_text(400000, 1), held = data::grammar_text(40000, 2);
  optim::AdamW opt(m->named_parameters(), {.lr = 3e-3, .weight_decay = 0.0});
  Generator data(2);
  SinkRun r;
  for (int64_t step = 0; step < steps; ++step) {
    auto [x, y] = windows(text, B, L, data);
    Tensor l = m->loss(x, y);
    opt.zero_grad();
    l.backward();
    opt.step();
    if (step >= steps - 20) r.train_loss += l.item() / 20.0;
  }
  m->eval();
  NoGradGuard ng;
  Generator eval_gen(3);
  auto [x, y] = windows(held, Beval, N, eval_gen);
  const std::vector<double> dense = loss_per_position(m->forward(x), y);
  r.in_length = mean_over(dense, 0, L);
  r.dense = mean_over(dense, L, N);
  auto decoded = [&](int64_t sinks, int64_t window) {
    Generator g(1);
    auto e =
        zoo::make_lm(cat_str(base, R"(, "attn_sink_window": )", window, R"(, "attn_sink_tokens": )", sinks, "}"), g);
    e->load_state_dict(m->state_dict());
    e->eval();
    auto st = e->make_state(Beval, N);
    std::vector<Tensor> out;
    for (int64_t t = 0; t < N; ++t) out.push_back(e->step(x.narrow(1, t, 1), st));
    return mean_over(loss_per_position(cat(out, 1), y), L, N);
  };
  r.sinks = decoded(4, L - 4);
  r.window = decoded(0, L);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}
}  // namespace

TZ_PROOF(streaming_llm,
         "sink+window decode == forward == the rolling cache (f64), cache s+w at 10x w, loss flat to 10x L") {
  const int64_t s = 4, w = 6, T = 60;  // 10 windows
  const std::string cfg = cat_str(R"({"attn_sink_window": )", w, R"(, "attn_sink_tokens": )", s, "}");
  const double ref = vs_reference(cfg, rolling_cache(s, w), T);
  int64_t buffer = 0;
  const double dec = layer_decode_vs_forward(cfg, T, 17, &buffer);
  MESSAGE("streaming_llm (s ", s, ", w ", w, ", T ", T, "): forward vs the rolling cache with slot positions ", ref,
          "; decode (token by token, prefill 17 + chunks of 3) vs forward ", dec, "; cache buffer ", buffer, " keys");
  CHECK(ref < 1e-12);
  CHECK(dec < 1e-12);
  CHECK(buffer == s + w);
  // The mask matters (not vacuous): full causal attention differs from it past s + w.
  CHECK(vs_reference(
            cfg, [](int64_t i, int64_t j) { return i - j; }, T) > 1e-6);  // far above the 1e-12 agreement
  // Bounded memory in a whole model: every layer's K and V hold s + w rows at 10 w tokens.
  {
    Generator gen(8);
    auto lm = zoo::make_lm(cat_str(R"({"vocab": 11, "dim": 16, "depth": 2, "heads": 2, "context": 64, "pos": "rope", )",
                                   R"("attn_sink_window": )", w, R"(, "attn_sink_tokens": )", s, "}"),
                           gen);
    lm->eval();
    NoGradGuard ng;
    Tensor ids = randint(0, 11, {1, 10 * w}, gen);
    auto st = lm->make_state(1, 10 * w);
    for (int64_t t = 0; t < 10 * w; ++t) lm->step(ids.narrow(1, t, 1), st);
    int64_t tensors = 0, largest = 0;
    for (auto& [name, t] : models::save_model_state(st))
      if (name.ends_with(".k") || name.ends_with(".v")) {
        ++tensors;
        largest = std::max(largest, t.size(2));
        CHECK(t.size(2) == s + w);
      }
    MESSAGE("streaming_llm: after ", 10 * w, " decoded tokens, ", tensors, " K/V buffers of at most ", largest,
            " rows (s + w = ", s + w, ")");
    CHECK(tensors == 4);
  }
  // The paper's claim: read far beyond its training length L with a cache of L (sinks 4 +
  // window L - 4), a model stays at its in-length loss; the window alone (the first tokens
  // evicted too) is the paper's failing baseline; dense attention meets distances never trained.
  const int64_t steps = testing::learning_runs() ? 300 : 3;
  const SinkRun r = sink_experiment(32, steps);
  MESSAGE("streaming_llm, trained at L = 32 for ", steps, " steps (train loss ", r.train_loss, ", ", r.seconds,
          " s): held-out loss at [0, L) ", r.in_length, "; at [L, 10 L) read token by token: sinks 4 + window 28 ",
          r.sinks, " (x", r.sinks / r.in_length, "), window 32 alone ", r.window, " (x", r.window / r.in_length,
          "); dense forward ", r.dense, " (x", r.dense / r.in_length, ")");
  if (testing::learning_runs()) {
    CHECK(r.in_length < 2.0);              // it learned the text (ln 256 = 5.5 untrained)
    CHECK(r.sinks <= 1.05 * r.in_length);  // flat to 10 L
    CHECK(r.dense >= 1.5 * r.in_length);   // what the bounded cache avoids
    TZ_PROOF_NUMBER("loss at [L, 10L) / loss at [0, L), sinks + window", r.sinks / r.in_length);
  }
  CHECK_THROWS_WITH_AS(layer(R"({"attn_sink_window": -1})"), doctest::Contains("attn_sink_window"), Error);
  CHECK_THROWS_WITH_AS(layer(R"({"attn_sink_tokens": 2})"), doctest::Contains("attn_sink_window"), Error);
  CHECK_THROWS_WITH_AS(layer(R"({"attn_sink_window": 4, "attn_lambda_local": 4})"), doctest::Contains("conflict"),
                       Error);
}

TZ_PROOF(lm_infinite,
         "no relative distance > L_pretrain is used, == Λ mask + distance clamp (f64), decode == forward") {
  const int64_t g = 3, local = 8, ceiling = 6, T = 80;  // 10 windows, ceiling below the window
  const std::string cfg = cat_str(R"({"attn_lambda_local": )", local, R"(, "attn_lambda_global": )", g,
                                  R"(, "attn_lambda_ceiling": )", ceiling, "}");
  const nn::LambdaRule rule(g, local, ceiling);
  const int64_t top = max_distance(rule, T);
  int64_t above = 0, clipped = 0;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j)
      if (rule.visible(i, j)) {
        above += rule.distance(i, j) > ceiling;
        clipped += i - j > ceiling;
      }
  // The layer against the paper's definition: Λ mask, d = min(i - j, L_pretrain).
  const PairRule paper = [&](int64_t i, int64_t j) -> int64_t {
    return (j < g || i - j < local) ? std::min(i - j, ceiling) : -1;
  };
  const double ref = vs_reference(cfg, paper, T);
  int64_t buffer = 0;
  const double dec = layer_decode_vs_forward(cfg, T, 13, &buffer);
  MESSAGE("lm_infinite (n_global ", g, ", L_local ", local, ", L_pretrain ", ceiling, ", T ", T,
          "): largest distance used ", top, ", pairs above L_pretrain ", above, " (", clipped,
          " pairs clipped), forward vs Λ mask + clamp ", ref, ", decode vs forward ", dec, ", cache ", buffer, " keys");
  CHECK(top == ceiling);
  CHECK(above == 0);
  CHECK(clipped > 0);
  CHECK(ref < 1e-12);
  CHECK(dec < 1e-12);
  CHECK(buffer == g + local);
  // The clamp matters: the same mask without it differs.
  CHECK(vs_reference(
            cfg, [&](int64_t i, int64_t j) { return (j < g || i - j < local) ? i - j : -1; }, T) >
        1e-6);  // far above the 1e-12 agreement
  TZ_PROOF_NUMBER("largest distance used (L_pretrain 6)", double(top));
  // It equals streaming_llm's mask (sinks = n_global, window = L_local) when nothing is clipped.
  Generator xs(9);
  const Tensor x = randn({1, 30, kC}, xs, DType::f64);
  const double same = testing::max_abs_diff(
      layer(R"({"attn_lambda_local": 8, "attn_lambda_global": 3, "attn_lambda_ceiling": 100})")->forward(x, {}),
      layer(R"({"attn_sink_window": 8, "attn_sink_tokens": 3})")->forward(x, {}));
  MESSAGE("lm_infinite vs streaming_llm's mask without positions: ", same);
  CHECK(same == 0);
  const double lm = [&] {
    Generator gen(21);
    auto m = zoo::make_lm(cat_str(R"({"vocab": 11, "dim": 16, "depth": 2, "heads": 2, "context": 40, "pos": "yarn", )",
                                  R"("rope_scale": 2, "attn_lambda_local": 8, "attn_lambda_global": 2, )",
                                  R"("attn_lambda_ceiling": 5})"),
                          gen);
    m->to(DType::f64);
    m->eval();
    NoGradGuard ng;
    Tensor ids = randint(0, 11, {2, 40}, gen);
    Tensor full = m->forward(ids);
    auto st = m->make_state(2, 40);
    double worst = 0;
    for (int64_t t = 0; t < 40; ++t)
      worst = std::max(worst, testing::max_abs_diff(m->step(ids.narrow(1, t, 1), st), full.narrow(1, t, 1)));
    return worst;
  }();
  MESSAGE("lm_infinite: a yarn LM, decode vs forward over 40 tokens ", lm);
  CHECK(lm < 1e-10);
  // Schemes a remap cannot honour are refused with the reason.
  {
    NoGradGuard ng;
    auto a = layer(cfg);
    nn::NtkRotary dynamic(10000.0, 1.0, 16);
    nn::XPosPositions xpos(10000.0, 512.0);
    nn::ALiBiPositions alibi(kH, kH);
    CHECK_THROWS_WITH_AS(a->forward(x, {.pos = &dynamic}), doctest::Contains("linear"), Error);
    CHECK_THROWS_WITH_AS(a->forward(x, {.pos = &xpos}), doctest::Contains("linear"), Error);
    CHECK_THROWS_WITH_AS(a->forward(x, {.pos = &alibi}), doctest::Contains("conflict"), Error);
  }
  CHECK_THROWS_WITH_AS(layer(R"({"attn_lambda_local": 4, "attn_lambda_ceiling": -2})"),
                       doctest::Contains("attn_lambda_ceiling"), Error);
}

TZ_PROOF(selfextend, "w_n >= L is the base model exactly, max position <= L_train - 1 up to (L_train - w_n) G + w_n") {
  // w_n >= L: a tiny rope LM with and without selfextend, same weights.
  auto logits = [](const std::string& extra) {
    Generator gen(5);
    auto m = zoo::make_lm(
        cat_str(R"({"vocab": 11, "dim": 16, "depth": 2, "heads": 2, "context": 32, "pos": "rope")", extra, "}"), gen);
    m->to(DType::f64);
    m->eval();
    NoGradGuard ng;
    Generator data(6);
    return m->forward(randint(0, 11, {2, 32}, data));
  };
  const Tensor base = logits("");
  const double same =
      testing::max_abs_diff(logits(R"(, "attn_selfextend_group": 4, "attn_selfextend_window": 32)"), base);
  const double moved =
      testing::max_abs_diff(logits(R"(, "attn_selfextend_group": 4, "attn_selfextend_window": 8)"), base);
  MESSAGE("selfextend: w_n = 32 >= L = 32 vs rope, max logit diff ", same, "; w_n = 8 moves them by ", moved);
  CHECK(same == 0);
  CHECK(moved > 1e-6);  // far above the exact agreement
  // The largest relative position: L_train = 16, w_n = 4, G = 4: up to (16 - 4) 4 + 4 = 52 tokens.
  const int64_t L_train = 16, w = 4, G = 4, L = (L_train - w) * G + w;
  const nn::SelfExtendRule rule(G, w);
  const int64_t top = max_distance(rule, L), beyond = max_distance(rule, L + 1),
                plain = max_distance(nn::SelfExtendRule(1, L), L);
  MESSAGE("selfextend (L_train ", L_train, ", w_n ", w, ", G ", G, "): largest relative position at L = ", L, ": ", top,
          "; at L + 1: ", beyond, "; without grouping: ", plain);
  CHECK(top == L_train - 1);
  CHECK(beyond == L_train);
  CHECK(plain == L - 1);
  TZ_PROOF_NUMBER("largest position at (L_train-w_n)G+w_n (L_train 16)", double(top));
  // The layer against the paper's two regimes, merged before the softmax; decoding.
  const PairRule paper = [&](int64_t i, int64_t j) -> int64_t {
    return i - j <= w ? i - j : i / G - j / G + w - w / G;
  };
  const std::string cfg = cat_str(R"({"attn_selfextend_group": )", G, R"(, "attn_selfextend_window": )", w, "}");
  const double ref = vs_reference(cfg, paper, L);
  const double dec = layer_decode_vs_forward(cfg, L, 11);
  MESSAGE("selfextend: forward vs the paper's merged regimes ", ref, "; decode vs forward ", dec);
  CHECK(ref < 1e-12);
  CHECK(dec < 1e-12);
  CHECK_THROWS_WITH_AS(layer(R"({"attn_selfextend_group": -1})"), doctest::Contains("attn_selfextend_group"), Error);
  CHECK_THROWS_WITH_AS(layer(R"({"attn_selfextend_window": 3})"), doctest::Contains("attn_selfextend_group"), Error);
}
