// Transformer-XL's relative positions, TUPE and top-k attention through the fused kernel's
// score terms (nn/attention/sdpa.h) against the paths they took before, which stay as their
// references: the scheme's dense query_score_bias [B, H, T, S] (k expanded per query head)
// on the composite path, and topk_mask on the composite scores. An attention layer with
// identical weights runs both ways (and on the composite path with the score terms read
// densely): outputs and the gradients of the input, of the layer's weights and of the
// scheme's parameters, at T = 63 and 100, with segment memory in front
// (a key offset), with G < H key/value heads, and step by step through a KV cache. Then the
// memory a training step takes, which the T x S scores no longer set.
#include <cmath>
#include <memory>

#include "autograd/ops.h"
#include "core/allocator.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "nn/attention/attention.h"
#include "nn/position/tupe.h"
#include "nn/position/txl_rel_pos.h"
#include "tests/test_util.h"

using namespace tz;
using namespace tz::nn;

namespace {

// A feature that asks for the scores and does nothing with them: the composite path.
class Materialise : public AttentionFeature {
 public:
  std::string key() const override { return "materialise"; }
  std::vector<Hook> hooks() const override { return {}; }
  std::string describe() const override { return ", materialise"; }
  bool needs_scores(const AttentionCall&) const override { return true; }
};

// The scheme as attention saw it before score terms: its dense query_score_bias only.
class DenseOnly : public PositionScheme {
 public:
  explicit DenseOnly(const PositionScheme& p) : p_(p) {}
  Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                          const MixerContext* ctx) const override {
    return p_.query_score_bias(q, k, q_start, k_start, ctx);
  }
  bool biases_with_queries() const override { return true; }
  int64_t max_positions() const override { return p_.max_positions(); }
  std::string describe() const override { return "DenseOnly(" + p_.describe() + ")"; }

 private:
  const PositionScheme& p_;
};

constexpr int64_t kC = 32, kH = 4;

// The layer of `json` over C = 32, H = 4 (seeded: the same weights each time), optionally on
// the composite path.
std::shared_ptr<Attention> layer(const std::string& json, bool composite, DType dt) {
  Generator gen(17);
  AttentionOptions o =
      attention_options(ModelDims{.dim = kC, .heads = kH, .context = 256, .depth = 2}, Config::parse(json));
  if (composite) o.features.push_back(std::make_shared<Materialise>());
  auto a = std::make_shared<Attention>(o, gen);
  a->to(dt);
  return a;
}

// Output, then the gradients of x, of the layer's weights and of the scheme's parameters,
// of sum(y * G) over x [B, T, C] at positions start.. (with M rows of memory before them).
std::vector<Tensor> run(Attention& a, const PositionScheme* pos, Module* params, int64_t T, int64_t start, int64_t M,
                        DType dt) {
  Generator gen(uint64_t(100 + T + M));
  Tensor x = randn({2, T, kC}, gen, dt).requires_grad_();
  Tensor memory = M > 0 ? randn({2, M, kC}, gen, dt) : Tensor();
  Tensor G = randn({2, T, kC}, gen, dt);
  if (params) params->zero_grad();
  Tensor y = a.forward(x, MixerContext{.start = start, .pos = pos, .layer = 1, .memory = memory});
  sum(y * G).backward();
  std::vector<Tensor> r{y.detach(), x.grad()};
  for (auto& [name, p] : a.named_parameters()) r.push_back(p.grad());
  if (params)
    for (auto& [name, p] : params->named_parameters()) r.push_back(p.grad().defined() ? p.grad() : zeros_like(p));
  a.zero_grad();
  return r;
}

// The largest error over the tensors, relative to each reference tensor's largest entry.
double worst_rel(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double m = 0;
    for (double v : b[i].to_vector<double>()) m = std::max(m, std::abs(v));
    w = std::max(w, testing::max_abs_diff(a[i], b[i]) / std::max(m, 1e-300));
  }
  return w;
}

// Decoding: a prefill of `first` positions, then one position per step, through KV caches,
// fused vs the reference layer; the largest output difference.
double decode_diff(Attention& fused, const PositionScheme* pos, Attention& ref, const PositionScheme* ref_pos,
                   int64_t T, int64_t first) {
  NoGradGuard ng;
  Generator gen(5);
  Tensor x = randn({2, T, kC}, gen, DType::f64);
  auto sf = fused.make_state(2, T, DType::f64), sr = ref.make_state(2, T, DType::f64);
  double worst = 0;
  for (int64_t t = 0; t < T;) {
    const int64_t n = t == 0 ? first : 1;
    Tensor xs = x.narrow(1, t, n);
    Tensor yf = fused.forward(xs, {.start = t, .pos = pos}, sf.get());
    Tensor yr = ref.forward(xs, {.start = t, .pos = ref_pos}, sr.get());
    worst = std::max(worst, testing::max_abs_diff(yf, yr));
    t += n;
  }
  return worst;
}

struct Case {
  const char* what;
  int64_t T, start, M;
  const char* json;
};

// Runs every case both ways in f64 (1e-12) and f32 (1e-5) and prints the worst errors.
void compare_paths(const char* name, PositionScheme* pos, const std::vector<Case>& cases, bool dense_reference) {
  for (DType dt : {DType::f64, DType::f32}) {
    double worst = 0;
    if (pos) pos->to(dt);
    for (const Case& c : cases) {
      CAPTURE(c.what);
      CAPTURE(std::string(dtype_name(dt)));
      auto fused = layer(c.json, false, dt), ref = layer(c.json, true, dt);
      std::unique_ptr<DenseOnly> dense = pos && dense_reference ? std::make_unique<DenseOnly>(*pos) : nullptr;
      const PositionScheme* ref_pos = dense ? dense.get() : pos;
      std::vector<Tensor> a = run(*fused, pos, pos, c.T, c.start, c.M, dt);
      std::vector<Tensor> b = run(*ref, ref_pos, pos, c.T, c.start, c.M, dt);
      double e = worst_rel(a, b);
      // The composite path with the same score terms read densely (a layer whose other
      // features need the scores): the same numbers too.
      if (dense) e = std::max(e, worst_rel(run(*ref, pos, pos, c.T, c.start, c.M, dt), b));
      CHECK(e <= (dt == DType::f64 ? 1e-12 : 1e-5));
      worst = std::max(worst, e);
      if (dt == DType::f64) {
        const double d = decode_diff(*fused, pos, *ref, ref_pos, 40, 17);
        CHECK(d < 1e-12);
        worst = std::max(worst, d);
      }
    }
    MESSAGE(std::string(name),
            ", fused vs the reference path (outputs, dx, dW, scheme parameters; KV-cache decode in f64), ",
            std::string(dtype_name(dt)), ": worst relative error ", worst);
  }
  if (pos) pos->to(DType::f64);
}

}  // namespace

TEST_CASE("txl_rel_pos: fused relative keys == the dense rel-shift term, outputs and every gradient") {
  Generator gen(3);
  TXLRelativePositions txl(kC, kH, 2, 10000.0, gen);
  compare_paths("txl_rel_pos", &txl,
                {{"T 63", 63, 0, 0, "{}"},
                 {"T 100", 100, 0, 0, "{}"},
                 {"T 63 after 37 memory rows (keys start 37 before the queries)", 63, 40, 37, "{}"},
                 {"T 100, G 2 of H 4", 100, 0, 0, R"({"attn_kv_heads": 2})"},
                 {"T 63, G 1 of H 4, at position 9", 63, 9, 0, R"({"attn_kv_heads": 1})"}},
                true);
}

TEST_CASE("tupe: fused pair product == the dense position term, outputs and every gradient (TUPE-A and -R)") {
  for (bool relative : {false, true}) {
    Generator gen(4);
    TUPEPositions tupe(256, kC, kH, relative, gen);
    compare_paths(relative ? "tupe (TUPE-R)" : "tupe (TUPE-A)", &tupe,
                  {{"T 63", 63, 0, 0, "{}"},
                   {"T 100", 100, 0, 0, "{}"},
                   {"T 63 after 37 memory rows", 63, 40, 37, "{}"},
                   {"T 100, G 2 of H 4", 100, 0, 0, R"({"attn_kv_heads": 2})"},
                   {"T 63, G 1 of H 4, at position 9", 63, 9, 0, R"({"attn_kv_heads": 1})"}},
                  true);
  }
}

TEST_CASE("topk: the tiled two-pass top-k == topk_mask on the composite scores, outputs and every gradient") {
  Generator gen(5);
  TXLRelativePositions txl(kC, kH, 2, 10000.0, gen);
  compare_paths("attn_sparse_topk 5", nullptr,
                {{"T 63", 63, 0, 0, R"({"attn_sparse_topk": 5})"},
                 {"T 100", 100, 0, 0, R"({"attn_sparse_topk": 5})"},
                 {"T 63 after 37 memory rows", 63, 40, 37, R"({"attn_sparse_topk": 5})"},
                 {"T 100, G 2 of H 4, k 17", 100, 0, 0, R"({"attn_sparse_topk": 17, "attn_kv_heads": 2})"}},
                false);
  // With relative keys too: both selections read the same scores.
  compare_paths("attn_sparse_topk 5 with txl_rel_pos", &txl,
                {{"T 100", 100, 0, 0, R"({"attn_sparse_topk": 5})"},
                 {"T 63, G 1 of H 4", 63, 3, 0, R"({"attn_sparse_topk": 5, "attn_kv_heads": 1})"}},
                true);
}

TEST_CASE("txl_rel_pos, tupe and topk train in memory linear in T: the T x S scores are gone") {
  // One attention layer (C 64, H 4, f32): a forward and backward, the allocator's peak over
  // it at T = 512 .. 2048; the reference path (scores materialised) beside it.
  Generator gen(6);
  TXLRelativePositions txl(64, 4, 1, 10000.0, gen);
  TUPEPositions tupe(2048, 64, 4, false, gen);
  struct Scheme {
    const char* name;
    const PositionScheme* pos;
    const char* json;
  };
  for (const Scheme& s : {Scheme{"txl_rel_pos", &txl, "{}"}, Scheme{"tupe", &tupe, "{}"},
                          Scheme{"attn_sparse_topk 8", nullptr, R"({"attn_sparse_topk": 8})"}}) {
    auto peak_of = [&](int64_t T, bool composite) {
      Generator g2(1);
      AttentionOptions o =
          attention_options(ModelDims{.dim = 64, .heads = 4, .context = 2048, .depth = 1}, Config::parse(s.json));
      if (composite) o.features.push_back(std::make_shared<Materialise>());
      Attention a(o, g2);
      std::unique_ptr<DenseOnly> dense = composite && s.pos ? std::make_unique<DenseOnly>(*s.pos) : nullptr;
      Tensor x = randn({1, T, 64}, g2).requires_grad_();
      const size_t base = allocator_stats().live_bytes;
      reset_allocator_peak();
      sum(a.forward(x, {.pos = dense ? dense.get() : s.pos})).backward();
      return double(allocator_stats().peak_bytes - base);
    };
    std::string line;
    double prev = 0, worst = 0;
    for (int64_t T : {512, 1024, 2048}) {
      const double bytes = peak_of(T, false);
      if (prev > 0) worst = std::max(worst, bytes / prev);
      line += cat_str("  T=", T, ": ", bytes / 1e6, " MB");
      prev = bytes;
    }
    const double c512 = peak_of(512, true), c1024 = peak_of(1024, true);
    MESSAGE(std::string(s.name), " training step, fused:", line, "; largest ratio per doubling ", worst,
            "; reference path at T=512, 1024: ", c512 / 1e6, ", ", c1024 / 1e6, " MB (x", c1024 / c512, ")");
    CHECK(worst < 2.2);         // linear: about 2 per doubling
    CHECK(c1024 / c512 > 3.0);  // the materialised scores: about 4
  }
}
