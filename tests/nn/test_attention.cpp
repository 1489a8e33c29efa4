// The attention pipeline (nn/attention/): the core (sdpa) on both paths, masks and relative
// biases as data, every feature continued through a KV cache in chunks, cross-attention as
// the same layer, and the one conflict rule.
#include <cmath>
#include <limits>
#include <set>

#include "core/allocator.h"
#include "models/zoo.h"
#include "nn/attention/cross_attention.h"
#include "nn/position/alibi.h"
#include "nn/position/t5_bias.h"
#include "nn/position/tupe.h"
#include "tests/test_util.h"

using namespace tz;
using namespace tz::nn;

namespace {
std::shared_ptr<Attention> make_attn(const std::string& json, uint64_t seed, ModelDims d = {}) {
  if (d.dim == 0) d = {.dim = 8, .heads = 2, .context = 16, .depth = 2};
  Generator gen(seed);
  auto a = std::make_shared<Attention>(attention_options(d, Config::parse(json)), gen);
  a->to(DType::f64);
  return a;
}

Tensor input(int64_t B, int64_t T, int64_t C, uint64_t seed) {
  Generator gen(seed);
  return randn({B, T, C}, gen, DType::f64);
}

// A scheme that hands attention an additive score mask through the query-dependent hook:
// the way masks travelled before they were data.
struct AdditiveMask : PositionScheme {
  Tensor mask;
  Tensor query_score_bias(const Tensor&, const Tensor&, int64_t, int64_t, const MixerContext*) const override {
    return mask;
  }
  bool biases_with_queries() const override { return true; }
  std::string describe() const override { return "AdditiveMask"; }
};

// Runs `a` over x in chunks of the given sizes through one KV cache; the concatenated outputs.
Tensor chunked(Attention& a, const Tensor& x, const std::vector<int64_t>& sizes, const MixerContext& base) {
  NoGradGuard ng;
  auto state = a.make_state(x.size(0), x.size(1), DType::f64);
  std::vector<Tensor> ys;
  int64_t t = 0;
  for (int64_t n : sizes) {
    MixerContext c = base;
    c.start = t;
    ys.push_back(a.forward(x.narrow(1, t, n), c, state.get()));
    t += n;
  }
  return cat(ys, 1);
}
}  // namespace

TEST_CASE("sdpa: fused and composite paths agree with k, v of G heads; outputs and gradients") {
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

TEST_CASE("sdpa: key padding and forgotten keys hide exactly their pairs; FCM equals the additive -inf mask") {
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

TEST_CASE("every feature continues through the KV cache: any split into chunks equals one forward") {
  const std::vector<std::string> configs = {
      "{}",
      R"({"attn_dim_head": 6})",
      R"({"heads": 4, "attn_kv_heads": 2})",
      R"({"heads": 4, "attn_kv_heads": 1})",
      R"({"attn_collab_heads": true})",
      R"({"attn_qk_norm": true})",
      R"({"attn_qk_norm": true, "attn_qk_norm_scale": 10})",
      R"({"attn_dconv": true})",
      R"({"attn_talking_heads": true})",
      R"({"attn_sparse_topk": 3})",
      R"({"attn_entmax": 1.5})",
      R"({"attn_adaptive_span": 4, "attn_span_ramp": 2})",
      R"({"attn_gate_values": true})",
      R"({"attn_on_attn": true})",
      R"({"attn_residual": true})",
  };
  Tensor x = input(2, 9, 8, 4);
  for (const std::string& json : configs) {
    CAPTURE(json);
    Config c = Config::parse(json);
    const int64_t H = c.has("heads") ? c.get_int("heads", 2) : 2;
    auto a = make_attn(json, 5, {.dim = 8, .heads = H, .context = 16, .depth = 2});
    // Make every feature matter (identity inits would hide a wrong continuation).
    {
      NoGradGuard ng;
      Generator g(6);
      for (auto& [name, p] : a->named_parameters())
        if (name != "span") core::copy_(p, p + randn(p.shape(), g, DType::f64, 0.0, 0.3));
    }
    Tensor full;
    {
      NoGradGuard ng;
      full = a->forward(x, {});
    }
    for (const auto& sizes : std::vector<std::vector<int64_t>>{{9}, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {4, 1, 4}, {2, 7}}) {
      CAPTURE(sizes.size());
      CHECK(testing::max_abs_diff(chunked(*a, x, sizes, {}), full) < 1e-12);
    }
  }
}

TEST_CASE("masks from the context: key padding and forgotten keys, chunked and decoded alike") {
  auto a = make_attn("{}", 7);
  Tensor x = input(2, 8, 8, 8);
  Tensor keep = ones({2, 8}, DType::i64), forgot = zeros({2, 8}, DType::i64);
  keep.set({1, 3}, 0.0);
  forgot.set({0, 2}, 1.0);
  forgot.set({0, 5}, 1.0);
  const MixerContext ctx{.key_padding = keep, .forgotten_keys = forgot};
  NoGradGuard ng;
  Tensor y = a->forward(x, ctx);
  // FCM as data (fused kernel, a mask term) equals the additive mask it replaces (the LM's
  // former route, composite), to rounding.
  AdditiveMask fcm;
  Tensor add = zeros({2, 1, 8, 8}, DType::f64);
  for (int64_t i = 0; i < 8; ++i) {
    add.set({1, 0, i, 3}, -std::numeric_limits<double>::infinity());
    for (int64_t j : {2, 5})
      if (i > j) add.set({0, 0, i, j}, -std::numeric_limits<double>::infinity());
  }
  fcm.mask = add;
  CHECK(testing::max_abs_diff(y, a->forward(x, {.pos = &fcm})) < 1e-14);
  // A hidden key changes nothing: perturb batch 1's key 3 (its value too).
  Tensor x2 = x.clone();
  Generator g9(9);
  core::copy_(x2.select(0, 1).select(0, 3), randn({8}, g9, DType::f64));
  Tensor y2 = a->forward(x2, ctx);
  CHECK(testing::max_abs_diff(y2.select(0, 1).narrow(0, 0, 3), y.select(0, 1).narrow(0, 0, 3)) == 0);
  CHECK(testing::max_abs_diff(y2.select(0, 1).narrow(0, 4, 4), y.select(0, 1).narrow(0, 4, 4)) == 0);
  // Whole-sequence masks serve every chunk of a cached run.
  CHECK(testing::max_abs_diff(chunked(*a, x, {3, 1, 4}, ctx), y) < 1e-12);
  CHECK(testing::max_abs_diff(chunked(*a, x, {1, 1, 1, 1, 1, 1, 1, 1}, ctx), y) < 1e-12);
}

TEST_CASE("cross-attention is the attention pipeline over ctx.context: adapter, mixer, padding, features, decoding") {
  Generator gen(10);
  const int64_t B = 2, T = 5, S = 7, C = 8, E = 6;
  // The mixer a model builds (ModelDims::context_dim) and the wrappers' CrossAttention are one
  // layer: the same parameters (q, kv, out) give the same outputs.
  auto mixer = make_attn("{}", 11, {.dim = C, .heads = 2, .depth = 1, .context_dim = E});
  CrossAttention adapter(CrossAttentionOptions{.dim = C, .heads = 2, .context_dim = E}, gen);
  adapter.to(DType::f64);
  adapter.load_state_dict(mixer->state_dict());
  CHECK(mixer->state_dict().count("kv.weight") == 1);
  CHECK_FALSE(mixer->options.causal);
  Tensor x = input(B, T, C, 12), e = input(B, S, E, 13);
  Tensor keep = ones({B, S}, DType::i64);
  keep.set({0, 6}, 0.0);
  NoGradGuard ng;
  Tensor y = mixer->forward(x, {.context = &e, .context_padding = keep});
  CHECK(testing::max_abs_diff(adapter.forward(x, e, keep), y) == 0);
  // Non-causal in the context, causal in x: query t reads every context position and no other query.
  Tensor e2 = e.clone();
  core::fill_(e2.select(0, 1).select(0, 6), 3.0);
  CHECK(testing::max_abs_diff(mixer->forward(x, {.context = &e2, .context_padding = keep}).select(0, 1).narrow(0, 0, 1),
                              y.select(0, 1).narrow(0, 0, 1)) > 1e-6);
  core::fill_(e2.select(0, 0).select(0, 6), 3.0);  // hidden by the padding
  CHECK(testing::max_abs_diff(mixer->forward(x, {.context = &e2, .context_padding = keep}).select(0, 0),
                              y.select(0, 0)) == 0);
  Tensor x2 = x.clone();
  core::fill_(x2.narrow(1, 3, 2), 1.0);
  CHECK(testing::max_abs_diff(mixer->forward(x2, {.context = &e, .context_padding = keep}).narrow(1, 0, 3),
                              y.narrow(1, 0, 3)) == 0);
  // Decoding caches the context's keys once; chunks give the forward's outputs.
  CHECK(testing::max_abs_diff(chunked(*mixer, x, {1, 3, 1}, {.context = &e, .context_padding = keep}), y) < 1e-12);
  // Features work inside it: GQA, qk_norm, talking heads (composite), a mask.
  auto feat = make_attn(R"({"attn_kv_heads": 1, "attn_qk_norm": true, "attn_talking_heads": true})", 14,
                        {.dim = C, .heads = 2, .context = 16, .depth = 1, .context_dim = E});
  CHECK(feat->kv->weight.shape() == Shape{2 * (C / 2), E});
  Tensor yf = feat->forward(x, {.context = &e, .context_padding = keep});
  CHECK(testing::all_finite(yf));
  CHECK(testing::max_abs_diff(chunked(*feat, x, {2, 3}, {.context = &e, .context_padding = keep}), yf) < 1e-12);
  // What is tied to x's own positions is refused.
  CHECK_THROWS_WITH_AS(make_attn(R"({"attn_dconv": true})", 15, {.dim = C, .heads = 2, .depth = 1, .context_dim = E}),
                       doctest::Contains("attn_dconv"), Error);
  CHECK_THROWS_WITH_AS(mixer->forward(x, {}), doctest::Contains("ctx.context"), Error);
}

TEST_CASE("conflicts: one replacement per stage, the error names both keys") {
  auto refused = [](const std::string& json, const char* a, const char* b) {
    CAPTURE(json);
    try {
      make_attn(json, 1, {.dim = 8, .heads = 2, .context = 16, .depth = 1});
      FAIL("no error");
    } catch (const Error& e) {
      const std::string m = e.what();
      CHECK(m.find(a) != std::string::npos);
      CHECK(m.find(b) != std::string::npos);
    }
  };
  refused(R"({"attn_entmax": 1.5, "attn_sparse_topk": 2})", "attn_entmax", "attn_sparse_topk");
  refused(R"({"attn_entmax": 1.5, "attn_adaptive_span": 4})", "attn_entmax", "attn_adaptive_span");
  refused(R"({"attn_sparse_topk": 2, "attn_adaptive_span": 4})", "attn_sparse_topk", "attn_adaptive_span");
  refused(R"({"attn_collab_heads": true, "attn_kv_heads": 1})", "attn_kv_heads", "attn_collab_heads");
  refused(R"({"attn_collab_heads": true, "attn_qk_norm": true})", "attn_collab_heads", "attn_qk_norm");
  refused(R"({"attn_span_ramp": 4})", "attn_span_ramp", "attn_adaptive_span");
  // Position terms that assume q.k / sqrt(D), with qk_norm.
  Generator gen(1);
  for (const char* pos : {"tupe", "txl_rel_pos"}) {
    CAPTURE(pos);
    CHECK_THROWS_WITH_AS(zoo::make_lm(cat_str(R"({"vocab": 8, "dim": 8, "heads": 2, "context": 8, "pos": ")", pos,
                                              R"(", "attn_qk_norm": true})"),
                                      gen),
                         doctest::Contains("attn_qk_norm"), Error);
    CHECK_THROWS_WITH_AS(zoo::make_lm(cat_str(R"({"vocab": 8, "dim": 8, "heads": 2, "context": 8, "pos": ")", pos,
                                              R"(", "attn_qk_norm": true})"),
                                      gen),
                         doctest::Contains(pos), Error);
  }
  // What may combine does: kv_heads with qk_norm, talking heads with realformer and top-k.
  CHECK_NOTHROW(make_attn(R"({"heads": 2, "attn_kv_heads": 1, "attn_qk_norm": true})", 2));
  CHECK_NOTHROW(make_attn(R"({"attn_talking_heads": true, "attn_residual": true, "attn_sparse_topk": 2})", 3));
}

TEST_CASE("tupe_relative (TUPE-R): the position term gains T5's bucket bias b_{j-i}; decoding equals the forward") {
  Generator gen(20);
  TUPEPositions a(32, 16, 2, false, gen), r(32, 16, 2, true, gen);
  a.to(DType::f64);
  r.to(DType::f64);
  REQUIRE(r.rel);
  CHECK_FALSE(a.rel);
  {
    NoGradGuard ng;  // the same absolute part in both
    core::copy_(r.pos->weight, a.pos->weight);
    core::copy_(r.u_q->weight, a.u_q->weight);
    core::copy_(r.u_k->weight, a.u_k->weight);
    Generator g(21);
    core::copy_(r.rel->table->weight, randn(r.rel->table->weight.shape(), g, DType::f64));
  }
  // Queries at 7.. over keys at 3..: term_R - term_A = b[bucket(j - i), h] for every pair.
  Tensor diff = r.position_term(7, 4, 3, 9, DType::f64) - a.position_term(7, 4, 3, 9, DType::f64);
  double worst = 0;
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 9; ++j)
        worst = std::max(worst, std::abs(diff.at({h, i, j}) -
                                         r.rel->table->weight.at({t5_bucket((3 + j) - (7 + i), false, 32, 128), h})));
  CHECK(worst < 1e-12);
  auto lm = zoo::make_lm(R"({"vocab": 11, "dim": 16, "depth": 2, "heads": 2, "context": 16, "pos": "tupe",
                             "tupe_relative": true})",
                         gen);
  lm->to(DType::f64);
  lm->eval();
  NoGradGuard ng;
  Tensor ids = randint(0, 11, {2, 9}, gen);
  Tensor full = lm->forward(ids);
  auto st = lm->make_state(2, 9);
  double dec = 0;
  for (int64_t t = 0; t < 9; ++t)
    dec = std::max(dec, testing::max_abs_diff(lm->step(ids.narrow(1, t, 1), st), full.narrow(1, t, 1)));
  MESSAGE("tupe_relative: |term_R - term_A - b| ", worst, "; decode vs forward ", dec);
  CHECK(dec < 1e-10);
}

TEST_CASE("attention and relative-bias ids declare typed keys; every feature key belongs to vanilla_mha") {
  const nn::VariantInfo& mha = zoo::registry().get("vanilla_mha");
  std::set<std::string> mha_keys;
  for (const ConfigKey& k : mha.keys) {
    CHECK_MESSAGE(!k.type.empty(), "vanilla_mha: key '", k.key, "' is not an nn::Key");
    mha_keys.insert(k.key);
  }
  for (const AttentionFeatureInfo& f : attention_features())
    for (const ConfigKey& k : f.keys)
      CHECK_MESSAGE(mha_keys.count(k.key), f.name, ": '", k.key, "' not in vanilla_mha");
  // Every key of an option id is a key of its feature, typed.
  for (const char* id :
       {"head_dim_decoupled", "mqa", "gqa", "collab_heads", "qk_norm", "primer_mdha", "realformer", "talking_heads",
        "topk_sparse_attn", "entmax_attn", "adaptive_span", "gate_values", "attn_on_attn"})
    for (const ConfigKey& k : zoo::registry().get(id).keys) CHECK_MESSAGE(mha_keys.count(k.key), id, ": ", k.key);
  // The position schemes of this folder read what they declare, with the declared defaults.
  const ModelDims dims{.dim = 8, .heads = 2, .context = 8, .depth = 2};
  for (const char* id : {"alibi", "t5_rel_bias"}) {
    CAPTURE(id);
    const nn::VariantInfo& v = zoo::registry().get(id);
    std::string json = "{";
    for (const ConfigKey& k : v.keys) {
      CHECK(!k.type.empty());
      json += (json.size() > 1 ? ", \"" : "\"") + k.key + "\": " + k.default_value;
    }
    Config all = Config::parse(json + "}", id), empty;
    Generator g1(1), g2(1);
    auto a = v.position(dims, all, g1), b = v.position(dims, empty, g2);
    CHECK_NOTHROW(all.check_all_read({}));
    CHECK(a->describe() == b->describe());
  }
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

TEST_CASE("key padding, forgotten keys and shared K/V heads train through the fused kernel too; so does an FCM LM") {
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
