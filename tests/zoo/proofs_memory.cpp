// Proofs of the memory options of attention (nn/attention/features/): learned key/value slots
// put before the keys. Each checks its catalogue property with numbers, on small f64 layers.
#include <algorithm>
#include <cmath>
#include <vector>

#include "models/zoo.h"
#include "nn/position/rope.h"
#include "tests/zoo/proofs.h"
#include "tests/zoo/proofs_attention.h"

using namespace tz;
using namespace tz::attn_proofs;

namespace {
double min_of(const Tensor& t) {
  std::vector<double> v = t.contiguous().to_vector<double>();
  return *std::min_element(v.begin(), v.end());
}
double max_abs(const Tensor& t) { return testing::max_abs_diff(t, zeros_like(t)); }

// Plain loops: causal attention of a plain-layout layer `a` whose keys and values are
// [M_k; K], [M_v; V], the N slots visible to every query and never rotated (the tokens' q, k
// rotated by `pos` at positions 0.., when given). Returns the layer's output [B, T, C].
Tensor memory_attention_loops(nn::Attention& a, const Tensor& x, const nn::PositionScheme* pos = nullptr) {
  NoGradGuard no_grad;
  const int64_t B = x.size(0), T = x.size(1), H = a.layout.H, D = a.layout.D;
  Tensor p = a.qkv->forward(x).view({B, T, 3, H, D});
  Tensor qt = p.select(2, 0).permute({0, 2, 1, 3}), kt = p.select(2, 1).permute({0, 2, 1, 3});
  if (pos) pos->rotate(qt, kt, 0, 0);
  auto flat = [](const Tensor& t) { return t.contiguous().to_vector<double>(); };  // [B, H, T, D]
  const std::vector<double> q = flat(qt), k = flat(kt), v = flat(p.select(2, 2).permute({0, 2, 1, 3}));
  const std::vector<double> mk = flat(a.param("mem_k")), mv = flat(a.param("mem_v"));  // [H, N, D]
  const int64_t N = a.param("mem_k").size(1);
  std::vector<double> y(size_t(B * T * H * D), 0.0);  // [B, T, H, D]
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const double* qi = &q[size_t(((b * H + h) * T + i) * D)];
        std::vector<double> s;  // scores: the N slots, then tokens 0..i
        std::vector<const double*> vals;
        for (int64_t n = 0; n < N + i + 1; ++n) {
          const size_t tok = size_t(((b * H + h) * T + n - N) * D), slot = size_t((h * N + n) * D);
          const double* kn = n < N ? &mk[slot] : &k[tok];
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += qi[d] * kn[d];
          s.push_back(dot / std::sqrt(double(D)));
          vals.push_back(n < N ? &mv[slot] : &v[tok]);
        }
        double mx = -INFINITY, den = 0;
        for (double e : s) mx = std::max(mx, e);
        for (double& e : s) den += (e = std::exp(e - mx));
        double* out = &y[size_t(((b * T + i) * H + h) * D)];
        for (size_t n = 0; n < s.size(); ++n)
          for (int64_t d = 0; d < D; ++d) out[d] += s[n] / den * vals[n][d];
      }
  return a.out->forward(from_vector(y, {B, T, H * D}));
}

}  // namespace

TZ_PROOF(persistent_memory, "N=0 equals vanilla_mha, memory slots visible at every position incl. t=0, causal") {
  const int64_t T = 7, N = 3;
  Tensor x = input(T);
  // N = 0 is vanilla_mha, bit for bit (same seed, same parameters).
  double d0;
  {
    NoGradGuard no_grad;
    auto off = make_attn(R"({"attn_num_mem_kv": 0})", 11);
    auto mha = make_attn("{}", 11);
    CHECK(off->named_parameters().size() == mha->named_parameters().size());
    d0 = testing::max_abs_diff(off->forward(x, {}), mha->forward(x, {}));
  }
  CHECK(d0 == 0);

  auto a = make_attn(cat_str(R"({"attn_num_mem_kv": )", N, "}"), 12);
  CHECK(a->param("mem_k").shape() == Shape{2, N, kC / 2});
  CHECK(a->param("mem_v").shape() == Shape{2, N, kC / 2});
  // The fused forward against plain loops over [M; K].
  double d_ref;
  {
    NoGradGuard no_grad;
    d_ref = testing::max_abs_diff(a->forward(x, {}), memory_attention_loops(*a, x));
  }
  CHECK(d_ref < 1e-12);

  // Every query, t = 0 included, gives every slot a weight > 0; the real keys stay causal.
  double min_slot = INFINITY, future = 0;
  {
    NoGradGuard no_grad;
    Tensor w = a->probabilities(x, {});  // [B, H, T, N + T]
    REQUIRE(w.shape() == Shape{kB, 2, T, N + T});
    min_slot = min_of(w.narrow(3, 0, N));
    for (int64_t i = 0; i + 1 < T; ++i)  // keys after i
      future = std::max(future, max_abs(w.narrow(2, i, 1).narrow(3, N + i + 1, T - i - 1)));
    // At t = 0 the slots take weight from x_0: the output differs from vanilla's v_0 W_o.
    auto mha = make_attn("{}", 12);
    CHECK(testing::max_abs_diff(a->forward(x, {}).narrow(1, 0, 1), mha->forward(x, {}).narrow(1, 0, 1)) > 1e-3);
  }
  CHECK(min_slot > 0);
  CHECK(future == 0);
  check_causal(*a, x);
  // KV cache: one token at a time, and a prefill of 3 then the rest, against the forward.
  double dec = decode_diff(*a, x);
  double prefill;
  {
    NoGradGuard no_grad;
    auto s = a->make_state(kB, T, DType::f64);
    Tensor y1 = a->forward(x.narrow(1, 0, 3), {}, s.get());
    Tensor y2 = a->forward(x.narrow(1, 3, T - 3), {.start = 3}, s.get());
    prefill = testing::max_abs_diff(cat({y1, y2}, 1), a->forward(x, {}));
  }
  CHECK(dec < 1e-12);
  CHECK(prefill < 1e-12);
  // The gradient reaches the slots (and x).
  Tensor xg = x.clone().requires_grad_();
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return a->forward(in[0], {}); },
                     {xg, a->param("mem_k"), a->param("mem_v")}, {.names = {"x", "mem_k", "mem_v"}});
  CHECK_MESSAGE(r.ok, r.report);
  MESSAGE("N = 0 vs vanilla_mha ", d0, "; fused vs loops ", d_ref, "; min slot weight ", min_slot,
          "; decode vs forward ", dec, ", prefill ", prefill, "; gradcheck max error ", r.max_abs_error);
  TZ_PROOF_NUMBER("min slot weight", min_slot);
}

TEST_CASE("persistent_memory, proof part 2: with GQA, qk_norm, key padding, rope and xpos, refusals") {
  Tensor x = input(6);
  // GQA: slots per key/value head; qk_norm: the slots' keys are normalised like the tokens'.
  for (const char* cfg :
       {R"({"attn_num_mem_kv": 2, "attn_kv_heads": 1})", R"({"attn_num_mem_kv": 2, "attn_qk_norm": true})",
        R"({"attn_num_mem_kv": 2, "attn_collab_heads": true})"}) {
    INFO(cfg);
    auto a = make_attn(cfg, 13, 4);
    CHECK(decode_diff(*a, x) < 1e-12);
    check_causal(*a, x);
  }
  // Key padding hides tokens, never the slots: query 0 of row 0, whose one token is padded,
  // attends to the slots alone; the fused forward equals the composite weights times [M_v; V].
  {
    NoGradGuard no_grad;
    const int64_t B = kB, T = 6, H = 2, D = kC / H, N = 2;
    auto a = make_attn(R"({"attn_num_mem_kv": 2})", 14);
    Tensor keep = ones({B, T}, DType::i64);
    keep.set({0, 0}, 0);
    keep.set({1, 2}, 0);
    nn::MixerContext ctx{.key_padding = keep};
    Tensor w = a->probabilities(x, ctx);                  // [B, H, T, N + T], composite path
    CHECK(max_abs(w.select(0, 0).narrow(2, N, 1)) == 0);  // row 0's padded token
    CHECK(max_abs(w.select(0, 1).narrow(2, N + 2, 1)) == 0);
    CHECK(min_of(w.narrow(3, 0, N)) > 0);
    CHECK(std::abs(sum(w.select(0, 0).narrow(1, 0, 1).narrow(2, 0, N)).item() - H) < 1e-12);  // t = 0, row 0
    Tensor v = a->qkv->forward(x).view({B, T, 3, H, D}).select(2, 2).permute({0, 2, 1, 3});
    Tensor vv = cat({a->param("mem_v").unsqueeze(0).expand({B, -1, -1, -1}), v}, 2);
    Tensor ref = a->out->forward(matmul(w, vv).permute({0, 2, 1, 3}).reshape({B, T, H * D}));
    double d = testing::max_abs_diff(a->forward(x, ctx), ref);
    MESSAGE("key padding: fused vs composite ", d);
    CHECK(d < 1e-12);
  }
  // Cross-attention: the slots come before the context's keys; a row whose whole context is
  // padded attends to the slots alone, and chunked decoding equals the forward.
  {
    NoGradGuard no_grad;
    const int64_t S = 5, E = 6, N = 2;
    Generator gen(16);
    nn::ModelDims d{.dim = kC, .heads = 2, .context = 16, .depth = 1, .context_dim = E};
    nn::Attention ca(nn::attention_options(d, nn::Config::parse(R"({"attn_num_mem_kv": 2})")), gen);
    ca.to(DType::f64);
    Tensor e = randn({kB, S, E}, gen, DType::f64), keep = ones({kB, S}, DType::i64);
    for (int64_t j = 0; j < S; ++j) keep.set({0, j}, 0);
    Tensor w = ca.probabilities(x, {.context = &e, .context_padding = keep});  // [B, H, T, N + S]
    CHECK(max_abs(w.select(0, 0).narrow(2, N, S)) == 0);
    CHECK(std::abs(sum(w.select(0, 0).narrow(2, 0, N)).item() - double(2 * x.size(1))) < 1e-12);
    Tensor y = ca.forward(x, {.context = &e, .context_padding = keep});
    auto st = ca.make_state(kB, x.size(1), DType::f64);
    Tensor y1 = ca.forward(x.narrow(1, 0, 2), {.context = &e, .context_padding = keep}, st.get());
    Tensor y2 = ca.forward(x.narrow(1, 2, 4), {.start = 2, .context = &e, .context_padding = keep}, st.get());
    CHECK(testing::max_abs_diff(cat({y1, y2}, 1), y) < 1e-12);
  }
  // RoPE rotates the tokens' queries and keys, never the slots: the layer equals the loops
  // with only the tokens rotated.
  {
    NoGradGuard no_grad;
    nn::RotaryPositions rope(10000.0);
    auto a = make_attn(R"({"attn_num_mem_kv": 3})", 15);
    double d = testing::max_abs_diff(a->forward(x, {.pos = &rope}), memory_attention_loops(*a, x, &rope));
    MESSAGE("rope: layer vs loops with unrotated slots ", d);
    CHECK(d < 1e-12);
  }
  // Through a model: rope and xpos rotate the tokens' keys, not the slots; cached decoding
  // equals the full forward.
  for (const char* pos : {"rope", "xpos"}) {
    double d = testing::lm_step_vs_forward(cat_str(R"({"attn_num_mem_kv": 3, "pos": ")", pos, "\"}"));
    MESSAGE(std::string(pos), " + persistent_memory: decode vs forward ", d);
    CHECK(d < 1e-12);
  }
  CHECK(testing::lm_step_vs_forward(R"({"attn_num_mem_kv": 3})") < 1e-12);
  // Refused: a relative score bias table (indexed by distance, it would bias the slots) and
  // adaptive span (a mask of i - j), each naming both keys.
  Generator gen(3);
  for (const char* pos : {"alibi", "t5_rel_bias", "tupe"}) {
    INFO(pos);
    auto lm = zoo::make_lm(
        cat_str(R"({"vocab": 11, "dim": 16, "depth": 1, "heads": 2, "context": 16, "attn_num_mem_kv": 2, "pos": ")",
                pos, "\"}"),
        gen);
    const std::string expected = cat_str("'attn_num_mem_kv' and pos '", pos, "' conflict");
    CHECK_THROWS_WITH(lm->forward(randint(0, 11, {1, 4}, gen)), doctest::Contains(expected.c_str()));
  }
  CHECK_THROWS_WITH(make_attn(R"({"attn_num_mem_kv": 2, "attn_adaptive_span": 8})", 1),
                    doctest::Contains("'attn_num_mem_kv' and 'attn_adaptive_span' conflict"));
  CHECK_THROWS_WITH(make_attn(R"({"attn_num_mem_kv": -1})", 1), doctest::Contains("attn_num_mem_kv must be >= 0"));
}

TEST_CASE("all-attention layers (persistent memory in place of the FFN): a layout of mixers only") {
  Generator gen(4);
  auto m = zoo::make_lm(R"({"vocab": 16, "dim": 16, "heads": 2, "context": 16, "layout": "sss", "attn_num_mem_kv": 8})",
                        gen);
  int ffn = 0, slots = 0;
  for (auto& [name, t] : m->named_parameters()) {
    ffn += name.find("ffn") != std::string::npos;
    slots += name.find("mem_k") != std::string::npos;
  }
  CHECK(ffn == 0);
  CHECK(slots == 3);
  CHECK(m->layers->size() == 3);
  const double e = testing::lm_step_vs_forward(R"({"layout": "sss", "attn_num_mem_kv": 8})");
  CHECK(e <= 1e-9);
}
