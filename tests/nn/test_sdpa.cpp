// The attention core (nn/attention/sdpa.h): the fused and composite paths against each other
// with k, v of G heads, masks (key padding, forgotten keys) and relative bias tables (ALiBi,
// T5) as data, and the memory of a training step growing linearly in T on the fused path.
#include <cmath>
#include <limits>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/allocator.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
#include "nn/position/alibi.h"
#include "nn/position/t5_bias.h"
#include "tests/test_util.h"

using namespace tz;
using namespace tz::nn;

TEST_CASE("sdpa: fused and composite paths agree with k, v of G heads, outputs and gradients") {
  Generator gen(1);
  for (int64_t G : {1, 2, 4}) {
    CAPTURE(G);
    Tensor q = randn({2, 4, 7, 5}, gen, DType::f64).requires_grad_();
    Tensor k = randn({2, G, 9, 5}, gen, DType::f64).requires_grad_();
    Tensor v = randn({2, G, 9, 5}, gen, DType::f64).requires_grad_();
    const SdpaSpec spec{.causal = true, .q_offset = 2};
    Tensor f = sdpa(q, k, v, spec), c = sdpa_composite(q, k, v, spec);
    CHECK(testing::max_abs_diff(f, c) < 1e-12);
    Tensor w = randn(f.shape(), gen, DType::f64);
    auto grads = [&](const Tensor& y) {
      q.zero_grad(), k.zero_grad(), v.zero_grad();
      sum(y * w).backward();
      return std::vector<Tensor>{q.grad().clone(), k.grad().clone(), v.grad().clone()};
    };
    auto gf = grads(sdpa(q, k, v, spec)), gc = grads(sdpa_composite(q, k, v, spec));
    for (size_t i = 0; i < 3; ++i) CHECK(testing::max_abs_diff(gf[i], gc[i]) < 1e-12);
  }
  // G must divide H.
  CHECK_THROWS_WITH_AS(sdpa(randn({1, 4, 2, 3}, gen), randn({1, 3, 2, 3}, gen), randn({1, 3, 2, 3}, gen), {}),
                       doctest::Contains("dividing H"), Error);
}

TEST_CASE("sdpa: key padding and forgotten keys hide exactly their pairs, FCM equals the additive -inf mask") {
  Generator gen(2);
  const int64_t B = 2, H = 2, T = 6, S = 6;
  Tensor q = randn({B, H, T, 4}, gen, DType::f64), k = randn({B, H, S, 4}, gen, DType::f64);
  Tensor v = eye(S, DType::f64).reshape({1, 1, S, S}).expand({B, H, S, S}).contiguous();  // out rows = weights
  Tensor keep = ones({B, S}, DType::i64), forgot = zeros({B, S}, DType::i64);
  keep.set({0, 1}, 0.0);
  forgot.set({1, 2}, 1.0);
  forgot.set({1, 4}, 1.0);
  const SdpaSpec spec{.causal = true, .key_padding = keep, .forgotten_keys = forgot};
  Tensor p = sdpa(q, k, v, spec), pc = sdpa_composite(q, k, v, spec);  // fused (mask terms), composite
  Tensor additive = zeros({B, 1, T, S}, DType::f64);
  int64_t hidden = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        const bool off = (b == 0 && j == 1) || (b == 1 && (j == 2 || j == 4) && i > j);
        if (off) additive.set({b, 0, i, j}, -std::numeric_limits<double>::infinity()), ++hidden;
        for (int64_t h = 0; h < H; ++h) {
          CHECK((p.at({b, h, i, j}) == 0) == off);
          CHECK((pc.at({b, h, i, j}) == 0) == off);
        }
      }
  CHECK(hidden == 5 + 3 + 1);
  // Query 1 of batch 0 still sees key 0; a forgotten key is seen by its own position.
  CHECK(p.at({1, 0, 2, 2}) > 0);
  Tensor ref = scaled_dot_product_attention_ref(q, k, v, true, 0, additive);
  CHECK(testing::max_abs_diff(pc, ref) == 0);
  CHECK(testing::max_abs_diff(p, ref) < 1e-15);
}

TEST_CASE("relative bias tables: ALiBi's is the closed form, T5's is differentiable and matches the dense bias") {
  ALiBiPositions alibi(4, 4);
  Tensor dense = relative_bias_dense(alibi.score_bias(4, 3, 2, 6, DType::f64), 2, 6);  // queries 3, 4 over keys 0..5
  double worst = 0;
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 6; ++j)
        worst = std::max(worst, std::abs(dense.at({h, i, j}) + alibi.slopes[size_t(h)] * std::abs(double(3 + i - j))));
  CHECK(worst == 0);
  Generator gen(3);
  T5RelativeBias t5(T5BiasOptions{.heads = 2, .num_buckets = 8, .max_distance = 16}, gen);
  t5.to(DType::f64);
  CHECK(testing::max_abs_diff(relative_bias_dense(t5.table_bias(5, 4, 9), 4, 9), t5.compute(5, 4, 9, DType::f64)) == 0);
  // Through the core, the gradient reaches the bucket table (gradcheck perturbs the table in
  // place, which table_bias reads).
  Tensor q = randn({1, 2, 4, 3}, gen, DType::f64), k = randn({1, 2, 9, 3}, gen, DType::f64);
  Tensor v = randn({1, 2, 9, 3}, gen, DType::f64);
  auto r = gradcheck(
      [&](const std::vector<Tensor>&) {
        return sdpa(q, k, v, {.causal = true, .q_offset = 5, .rel_bias = t5.table_bias(5, 4, 9)});
      },
      {t5.table->weight});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("ALiBi and T5 train through the fused kernel: peak memory of a training step linear in T") {
  // One attention layer (C 64, H 4, f32) with its position scheme: forward, backward; the
  // allocator's peak over the step. The composite path (scores materialised) is shown beside
  // it for T up to 1024.
  Generator gen(30);
  ALiBiPositions alibi(4, 4);
  T5RelativeBias t5(T5BiasOptions{.heads = 4}, gen);
  auto a = std::make_shared<Attention>(AttentionOptions{.dim = 64, .heads = 4}, gen);
  auto peak_of = [&](const PositionScheme& pos, int64_t T, bool composite) {
    Tensor x = randn({1, T, 64}, gen).requires_grad_();
    Tensor q = randn({1, 4, T, 16}, gen).requires_grad_(), k = randn({1, 4, T, 16}, gen).requires_grad_();
    Tensor v = randn({1, 4, T, 16}, gen).requires_grad_();
    const size_t base = allocator_stats().live_bytes;
    reset_allocator_peak();
    if (composite) {  // the core alone on the composite path, with the same table
      Tensor table = pos.score_bias(4, 0, T, T, DType::f32);
      sum(sdpa_composite(q, k, v, {.causal = true, .rel_bias = table})).backward();
    } else {
      sum(a->forward(x, {.pos = &pos})).backward();
    }
    return double(allocator_stats().peak_bytes - base);
  };
  for (const PositionScheme* pos :
       {static_cast<const PositionScheme*>(&alibi), static_cast<const PositionScheme*>(&t5)}) {
    CAPTURE(pos->describe());
    std::string line;
    double prev = 0, worst = 0;
    for (int64_t T : {256, 512, 1024, 2048}) {
      const double bytes = peak_of(*pos, T, false);
      if (prev > 0) worst = std::max(worst, bytes / prev);
      line += cat_str("  T=", T, ": ", bytes / 1e6, " MB");
      prev = bytes;
    }
    const double c512 = peak_of(*pos, 512, true), c1024 = peak_of(*pos, 1024, true);
    MESSAGE(pos->describe(), " training step, fused:", line, "; largest ratio per doubling ", worst,
            "; composite core alone at T=512, 1024: ", c512 / 1e6, ", ", c1024 / 1e6, " MB (x", c1024 / c512, ")");
    CHECK(worst < 2.5);         // linear: about 2 per doubling
    CHECK(c1024 / c512 > 3.5);  // the materialised scores: about 4
  }
}

TEST_CASE("key padding, forgotten keys and shared K/V heads train through the fused kernel too, so does an FCM LM") {
  Generator gen(31);
  ModelDims d{.dim = 64, .heads = 4, .context = 2048, .depth = 1};
  auto a = std::make_shared<Attention>(attention_options(d, Config::parse(R"({"attn_kv_heads": 1})")), gen);
  auto lm =
      zoo::make_lm(R"({"vocab": 16, "dim": 64, "depth": 1, "heads": 4, "context": 2048, "fcm_max_ratio": 0.5})", gen);
  auto peak_of = [&](int64_t T, bool model) {
    Tensor x = randn({1, T, 64}, gen).requires_grad_();
    Tensor keep = ones({1, T}, DType::i64), forgot = zeros({1, T}, DType::i64);
    for (int64_t j = 0; j < T; j += 3) forgot.set({0, j}, 1.0);
    keep.set({0, 1}, 0.0);
    Tensor ids = randint(0, 16, {1, T}, gen);
    const size_t base = allocator_stats().live_bytes;
    reset_allocator_peak();
    if (model)
      lm->loss(ids, ids).backward();  // training: FCM draws forgotten keys
    else
      sum(a->forward(x, {.key_padding = keep, .forgotten_keys = forgot})).backward();
    return double(allocator_stats().peak_bytes - base);
  };
  for (bool model : {false, true}) {
    std::string line;
    double prev = 0, worst = 0;
    for (int64_t T : {256, 512, 1024, 2048}) {
      const double bytes = peak_of(T, model);
      if (prev > 0) worst = std::max(worst, bytes / prev);
      line += cat_str("  T=", T, ": ", bytes / 1e6, " MB");
      prev = bytes;
    }
    const std::string what =
        model ? "FCM LM (1 layer, fcm_max_ratio 0.5)" : "MQA layer with key padding and forgotten keys";
    MESSAGE(what, " training step:", line, "; largest ratio per doubling ", worst);
    CHECK(worst < 2.5);
  }
}
