// The attention pipeline (nn/attention/): every feature continued through a KV cache in
// chunks, masks from the context, cross-attention as the same layer, the one conflict rule,
// TUPE-R and the keys. The core (sdpa) is tested in test_sdpa.cpp.
#include <cmath>
#include <limits>
#include <set>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/zoo.h"
#include "nn/attention/attention.h"
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

TEST_CASE("cross-attention is the attention pipeline over ctx.context: reference, padding, features, decoding") {
  const int64_t B = 2, T = 5, S = 7, C = 8, E = 6, H = 2;
  auto mixer = make_attn("{}", 11, {.dim = C, .heads = H, .depth = 1, .context_dim = E});
  CHECK(mixer->state_dict().count("kv.weight") == 1);
  CHECK_FALSE(mixer->options.causal);
  Tensor x = input(B, T, C, 12), e = input(B, S, E, 13);
  Tensor keep = ones({B, S}, DType::i64);
  keep.set({0, 6}, 0.0);
  NoGradGuard ng;
  Tensor y = mixer->forward(x, {.context = &e, .context_padding = keep});
  // By hand: q = x W_q, [k | v] = e W_kv, softmax over the visible context positions (padding
  // as an additive -inf on the composite reference), W_o.
  auto heads = [&](const Tensor& p, int64_t N) { return p.reshape({B, N, H, C / H}).permute({0, 2, 1, 3}); };
  Tensor kv = mixer->kv->forward(e);
  std::vector<double> pad(size_t(B * T * S), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j)
        if (keep.at({b, j}) == 0) pad[size_t((b * T + i) * S + j)] = -std::numeric_limits<double>::infinity();
  Tensor a = scaled_dot_product_attention_ref(heads(mixer->q->forward(x), T), heads(kv.narrow(-1, 0, C), S),
                                              heads(kv.narrow(-1, C, C), S), false, 0,
                                              from_vector(pad, {B, 1, T, S}).to(DType::f64));
  Tensor ref = mixer->out->forward(a.permute({0, 2, 1, 3}).reshape({B, T, C}));
  CHECK(testing::max_abs_diff(ref, y) < 1e-14);
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

TEST_CASE("tupe_relative (TUPE-R): the position term gains T5's bucket bias b_{j-i}, decoding equals the forward") {
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

TEST_CASE("attention and relative-bias ids declare typed keys, every feature key belongs to vanilla_mha") {
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
