// Score terms of the fused attention (core/kernels/attention.h) - relative keys
// (Transformer-XL), the pair product (TUPE) and top-k (explicit sparse attention) - against
// the materialising f64 reference kernels and against the composite op (attention_composite,
// dense [B, H, T, S] scores): outputs, lse, thresholds and the gradients of q, k, v and of
// every term's operands, at ragged sizes (T = 63, 100, a decoding step), with a KV-cache
// offset, with G < H key/value heads, causal or not, alone and combined with a mask and a
// relative bias table; f64 and f32 at every SIMD level this CPU runs. Then exact ties under
// top-k, determinism over thread counts, and the errors.
#include <cmath>
#include <functional>
#include <limits>

#include "autograd/ops.h"
#include "core/attention.h"
#include "core/attention_partial.h"
#include "core/creation.h"
#include "core/kernels/attention.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

// q [B, H, T, D] at key positions q_offset.., k, v [B, G, S, D]; Dp the pair operands' width.
struct Dims {
  int64_t B, H, G, T, S, D, q_offset, Dp;
};
std::vector<Dims> dims() {
  return {
      {2, 4, 2, 63, 63, 20, 0, 8},     // T = 63, G < H
      {1, 2, 2, 100, 100, 16, 0, 16},  // T = 100
      {2, 2, 2, 100, 130, 24, 30, 8},  // a KV cache of 30 keys before the queries
      {1, 4, 1, 63, 90, 20, 27, 12},   // multi-query with a cache offset
      {2, 2, 1, 1, 70, 16, 69, 8},     // one decoding step
  };
}
std::string describe(const Dims& d) {
  return cat_str("B ", d.B, " H ", d.H, " G ", d.G, " T ", d.T, " S ", d.S, " D ", d.D, " q_offset ", d.q_offset);
}

struct Kind {
  const char* name;
  bool rel = false, pair = false;
  int64_t topk = 0;
  bool window = false, bias = false;
};
const std::vector<Kind>& kinds() {
  static const std::vector<Kind> ks = {
      {.name = "relative keys", .rel = true},
      {.name = "pair product", .pair = true},
      {.name = "top-3", .topk = 3},
      {.name = "top-17", .topk = 17},
      {.name = "relative keys + pair + top-5 + window 40 + bias table",
       .rel = true,
       .pair = true,
       .topk = 5,
       .window = true,
       .bias = true},
  };
  return ks;
}

// The leaves of one case: q, k, v, then the terms' operands (pair_q shared by the batch).
struct Leaves {
  Tensor q, k, v, bias, rel_q, rel_k, pair_q, pair_k;
  std::vector<Tensor> all() const {
    std::vector<Tensor> r;
    for (const Tensor& t : {q, k, v, bias, rel_q, rel_k, pair_q, pair_k})
      if (t.defined()) r.push_back(t);
    return r;
  }
};
Leaves make_leaves(const Dims& d, const Kind& m, DType dt, uint64_t seed) {
  Generator gen(seed);
  Leaves l;
  l.q = randn({d.B, d.H, d.T, d.D}, gen, dt).requires_grad_();
  l.k = randn({d.B, d.G, d.S, d.D}, gen, dt).requires_grad_();
  l.v = randn({d.B, d.G, d.S, d.D}, gen, dt).requires_grad_();
  const int64_t R = d.T + d.S - 1;
  if (m.bias) l.bias = randn({d.H, R}, gen, dt).requires_grad_();
  if (m.rel) {
    l.rel_q = randn({d.B, d.H, d.T, d.D}, gen, dt).requires_grad_();
    l.rel_k = randn({d.H, R, d.D}, gen, dt).requires_grad_();
  }
  if (m.pair) {
    l.pair_q = randn({1, d.H, d.T, d.Dp}, gen, dt).requires_grad_();
    l.pair_k = randn({d.B, d.H, d.S, d.Dp}, gen, dt).requires_grad_();
  }
  return l;
}
AttentionSpec spec_of(const Dims& d, const Kind& m, bool causal, const Leaves& l) {
  AttentionSpec s{.causal = causal,
                  .q_offset = d.q_offset,
                  .rel_bias = l.bias,
                  .rel_q = l.rel_q,
                  .rel_k = l.rel_k,
                  .pair_q = l.pair_q,
                  .pair_k = l.pair_k,
                  .pair_scale = 0.3,
                  .topk = m.topk};
  if (m.window) {
    auto mask = std::make_shared<kernels::AttentionMask>();
    mask->terms.push_back(std::make_shared<kernels::WindowMask>(40));
    s.mask = mask;
  }
  return s;
}

// lse or thresholds: -inf entries must match exactly, the rest within a relative RMS tol.
double inf_aware_rel_rms(const Tensor& a, const Tensor& b, int64_t& mismatched) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isinf(x[i]) || std::isinf(y[i]) || std::isnan(x[i]) || std::isnan(y[i])) {
      mismatched += !(x[i] == y[i]);
      continue;
    }
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

// Equal entry for entry (-inf == -inf included).
bool same(const Tensor& a, const Tensor& b) { return a.to_vector<double>() == b.to_vector<double>(); }

#define CHECK_REL(a, b, tol, worst)                                                                   \
  do {                                                                                                \
    const double e_ = rel_rms((a), (b));                                                              \
    worst = std::max(worst, e_);                                                                      \
    CHECK_MESSAGE(e_ <= (tol), #a " rel rms error ", e_, ", max abs error ", max_abs_diff((a), (b))); \
  } while (0)

void for_each_case(const std::function<void(const Dims&, const Kind&, bool, DType)>& body) {
  for (DType dt : {DType::f64, DType::f32})
    for (const Dims& d : dims())
      for (const Kind& m : kinds())
        for (bool causal : {true, false}) {
          CAPTURE(describe(d));
          CAPTURE(m.name);
          CAPTURE(causal);
          CAPTURE(std::string(dtype_name(dt)));
          body(d, m, causal, dt);
        }
}

}  // namespace

TEST_CASE("score terms: fast kernels vs the f64 reference kernels, outputs, lse, thresholds, every gradient") {
  double worst64 = 0, worst32 = 0;
  for_each_case([&](const Dims& d, const Kind& m, bool causal, DType dt) {
    Leaves l = make_leaves(d, m, dt, 11 + uint64_t(d.T + d.S));
    AttentionSpec spec = spec_of(d, m, causal, l);
    Generator gen(5);
    Tensor g = randn(l.q.shape(), gen, dt);
    core::AttentionForward r = core::attention(l.q, l.k, l.v, spec, true);
    core::AttentionGrads gr = core::attention_backward(g, l.q, l.k, l.v, r.out, r.lse, spec, true);
    for (SimdLevel level : simd_levels()) {
      if (dt == DType::f64 && level != SimdLevel::off) continue;  // f64: the portable loops only
      SimdLevelGuard guard(level);
      CAPTURE(std::string(simd_level_name(level)));
      // f64: the same sums in another order (online softmax over tiles); f32: rounding.
      const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
      double& worst = dt == DType::f64 ? worst64 : worst32;
      core::AttentionForward f = core::attention(l.q, l.k, l.v, spec);
      CHECK_REL(f.out, r.out, tol, worst);
      int64_t mismatched = 0;
      CHECK(inf_aware_rel_rms(f.lse, r.lse, mismatched) <= tol);
      if (m.topk > 0 && m.topk < d.S) {
        REQUIRE(f.threshold.defined());
        CHECK(inf_aware_rel_rms(f.threshold, r.threshold, mismatched) <= tol);
      }
      CHECK(mismatched == 0);
      // The backward with the forward's thresholds, and finding them itself.
      AttentionSpec handed = spec;
      handed.topk_threshold = f.threshold;
      for (const AttentionSpec* s : {&handed, &spec}) {
        core::AttentionGrads gf = core::attention_backward(g, l.q, l.k, l.v, f.out, f.lse, *s);
        CHECK_REL(gf.dq, gr.dq, tol, worst);
        CHECK_REL(gf.dk, gr.dk, tol, worst);
        CHECK_REL(gf.dv, gr.dv, tol, worst);
        if (m.bias) CHECK_REL(gf.drel_bias, gr.drel_bias, tol, worst);
        if (m.rel) {
          CHECK_REL(gf.drel_q, gr.drel_q, tol, worst);
          CHECK_REL(gf.drel_k, gr.drel_k, tol, worst);
        }
        if (m.pair) {
          CHECK(gf.dpair_q.shape() == l.pair_q.shape());
          CHECK_REL(gf.dpair_q, gr.dpair_q, tol, worst);
          CHECK_REL(gf.dpair_k, gr.dpair_k, tol, worst);
        }
      }
    }
  });
  MESSAGE("score terms, fast vs reference kernels: worst rel rms f64 ", worst64, ", f32 ", worst32);
}

TEST_CASE("score terms: the fused op vs attention_composite (dense scores), outputs and leaf gradients") {
  double worst64 = 0, worst32 = 0;
  for_each_case([&](const Dims& d, const Kind& m, bool causal, DType dt) {
    auto run = [&](bool fused) {
      Leaves l = make_leaves(d, m, dt, 23 + uint64_t(d.T * 3 + d.S));
      AttentionSpec spec = spec_of(d, m, causal, l);
      Generator gen(6);
      Tensor G = randn(l.q.shape(), gen, dt);
      Tensor out = fused ? attention(l.q, l.k, l.v, spec) : attention_composite(l.q, l.k, l.v, spec);
      (out * G).sum().backward();
      std::vector<Tensor> r{out.detach()};
      for (const Tensor& t : l.all()) r.push_back(t.grad());
      return r;
    };
    std::vector<Tensor> composite = run(false);
    for (SimdLevel level : simd_levels()) {
      if (dt == DType::f64 && level != SimdLevel::off) continue;
      SimdLevelGuard guard(level);
      CAPTURE(std::string(simd_level_name(level)));
      const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
      double& worst = dt == DType::f64 ? worst64 : worst32;
      std::vector<Tensor> fused = run(true);
      REQUIRE(fused.size() == composite.size());
      for (size_t i = 0; i < fused.size(); ++i) {
        CAPTURE(i);
        CHECK_REL(fused[i], composite[i], tol, worst);
      }
    }
  });
  MESSAGE("score terms, fused op vs attention_composite: worst rel rms f64 ", worst64, ", f32 ", worst32);
}

TEST_CASE("top-k keeps every score tied with the k-th, as the reference does, thresholds are exact scores") {
  // Integer q, k with scale 1: the scores are small integers, so every row has many exact ties.
  const int64_t B = 1, H = 2, T = 40, S = 40, D = 4;
  std::vector<double> qv(size_t(B * H * T * D)), kv(size_t(B * H * S * D));
  for (size_t i = 0; i < qv.size(); ++i) qv[i] = double(int64_t(i * 7 % 5) - 2);
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = double(int64_t(i * 3 % 4) - 1);
  for (DType dt : {DType::f64, DType::f32}) {
    CAPTURE(std::string(dtype_name(dt)));
    Tensor q = from_vector(qv, {B, H, T, D}).to(dt), k = from_vector(kv, {B, H, S, D}).to(dt);
    Generator gen(9);
    Tensor v = randn({B, H, S, D}, gen, dt);
    for (bool causal : {false, true}) {
      AttentionSpec spec{.causal = causal, .scale = 1.0, .topk = 4};
      core::AttentionForward r = core::attention(q, k, v, spec, true);
      Tensor composite = attention_composite(q, k, v, spec);
      // The scores, to count what each row keeps: s >= its threshold (and visible).
      Tensor s = matmul(q, k.transpose(-1, -2)).to(DType::f64);
      int64_t rows_with_ties = 0;
      for (SimdLevel level : simd_levels()) {
        if (dt == DType::f64 && level != SimdLevel::off) continue;
        SimdLevelGuard guard(level);
        CAPTURE(std::string(simd_level_name(level)));
        core::AttentionForward f = core::attention(q, k, v, spec);
        CHECK(max_abs_diff(f.out, r.out) <= (dt == DType::f64 ? 1e-12 : 1e-5));
        CHECK(max_abs_diff(f.out, composite) <= (dt == DType::f64 ? 1e-12 : 1e-5));
        // Integer scores are exact in both dtypes: each threshold is one of its row's scores.
        CHECK(same(f.threshold, r.threshold));
        rows_with_ties = 0;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < T; ++i) {
            const double thr = f.threshold.at({0, h, i});
            int64_t kept = 0, equal = 0;
            for (int64_t j = 0; j < (causal ? i + 1 : S); ++j) {
              kept += s.at({0, h, i, j}) >= thr;
              equal += s.at({0, h, i, j}) == thr;
            }
            if (!std::isinf(thr)) CHECK(equal >= 1);  // the threshold is a score of the row
            rows_with_ties += kept > 4;
          }
        CHECK(rows_with_ties > 10);  // ties were reached and kept
      }
      MESSAGE("top-4 over integer scores (", std::string(causal ? "causal" : "full"), ", ", std::string(dtype_name(dt)),
              "): rows keeping more than 4 keys for ties: ", rows_with_ties, " of ", H * T);
    }
  }
}

TEST_CASE("score terms: results do not depend on the thread count") {
  const Dims d{2, 4, 2, 100, 100, 32, 0, 8};
  const Kind m{.name = "all", .rel = true, .pair = true, .topk = 5, .bias = true};
  Leaves l = make_leaves(d, m, DType::f32, 3);
  AttentionSpec spec = spec_of(d, m, true, l);
  Generator gen(4);
  Tensor g = randn(l.q.shape(), gen);
  const int prev = get_num_threads();
  std::vector<std::vector<Tensor>> runs;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    core::AttentionForward f = core::attention(l.q, l.k, l.v, spec);
    core::AttentionGrads gf = core::attention_backward(g, l.q, l.k, l.v, f.out, f.lse, spec);
    runs.push_back({f.out, f.threshold, gf.dq, gf.dk, gf.dv, gf.drel_q, gf.drel_k, gf.dpair_q, gf.dpair_k});
  }
  set_num_threads(prev);
  for (size_t i = 0; i < runs[0].size(); ++i) CHECK(same(runs[0][i], runs[1][i]));
}

TEST_CASE("avx2::attn_exp: exp of the shifted row, exactly 0 below the cut and for hidden scores, NaN kept") {
  if (!cpu_has_avx2_fma()) return;
  const float inf = std::numeric_limits<float>::infinity();
  // 19 entries: two full vectors and a tail of 3; z = x - m spans the cut at -32.
  std::vector<float> x = {-inf, -300.f, -100.f, -88.5f, -30.2f, -29.9f, -50.f, -10.f, -1.f, 0.f,
                          0.5f, 1.f,    1.5f,   -inf,   -20.f,  -28.5f, -2.f,  2.f,   -inf};
  const float m = 2.f;
  std::vector<float> y(x.size(), -1.f);
  const double sum = kernels::avx2::attn_exp(y.data(), x.data(), int64_t(x.size()), m);
  double expect_sum = 0, worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float z = x[i] - m;
    CAPTURE(z);
    if (z < kernels::avx2::kAttnExpCut) {
      CHECK(y[i] == 0.f);  // exactly 0: no subnormal follows in p*V
    } else {
      const double e = std::exp(double(z));
      worst = std::max(worst, std::abs(double(y[i]) - e) / e);
    }
    expect_sum += double(y[i]);
  }
  CHECK(worst < 2e-7);  // vecmath's exp: < 1 ulp
  CHECK(std::abs(sum - expect_sum) <= 1e-15 * expect_sum);
  // A NaN score stays NaN (a broken input must show).
  std::vector<float> xn = {0.f, std::nanf(""), -inf};
  std::vector<float> yn(3);
  kernels::avx2::attn_exp(yn.data(), xn.data(), 3, 0.f);
  CHECK(std::isnan(yn[1]));
  CHECK(yn[0] == 1.f);
  CHECK(yn[2] == 0.f);
}

TEST_CASE("score terms: errors name the operands and the sizes") {
  Tensor q = zeros({1, 2, 4, 8}), k = zeros({1, 2, 5, 8});
  CHECK_THROWS_WITH_AS(core::attention(q, k, k, AttentionSpec{.rel_q = zeros({1, 2, 4, 8}), .rel_k = zeros({2, 7, 8})}),
                       doctest::Contains("rel_k [H, T + S - 1, Dr] = [2, 8, Dr]"), Error);
  CHECK_THROWS_WITH_AS(core::attention(q, k, k, AttentionSpec{.rel_q = zeros({1, 2, 4, 8})}),
                       doctest::Contains("rel_q and rel_k come together"), Error);
  CHECK_THROWS_WITH_AS(
      core::attention(q, k, k, AttentionSpec{.pair_q = zeros({1, 2, 4, 3}), .pair_k = zeros({1, 2, 4, 3})}),
      doctest::Contains("pair_k [B or 1, H, S, Dp]"), Error);
  CHECK_THROWS_WITH_AS(core::attention(q, k, k, AttentionSpec{.topk = -1}), doctest::Contains("topk must be >= 0"),
                       Error);
  CHECK_THROWS_WITH_AS(core::attention_parts(q, {{k, k, AttentionSpec{.topk = 2}}}),
                       doctest::Contains("selects over all keys at once"), Error);
  // k >= S: top-k hides nothing (no thresholds), the output is plain attention's.
  Generator gen(2);
  Tensor a = randn({1, 2, 4, 8}, gen), b = randn({1, 2, 5, 8}, gen);
  core::AttentionForward f = core::attention(a, b, b, AttentionSpec{.causal = true, .q_offset = 1, .topk = 5});
  CHECK_FALSE(f.threshold.defined());
  CHECK(max_abs_diff(f.out, core::attention(a, b, b, AttentionSpec{.causal = true, .q_offset = 1}).out) == 0);
}

}  // namespace tz::testing
