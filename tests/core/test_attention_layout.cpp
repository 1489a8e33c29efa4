// Sparse attention layouts (core/kernels/attention_layout.h) and the merge of partial
// results (core/attention_partial.h): for every pattern, at ragged T (63, 100) with windows
// and strides that are no multiples of the 32-wide tile, the tiled kernel with the layout's
// mask term equals the dense reference kernel with the same pattern written out as an
// explicit boolean matrix (each pattern's definition restated here from its paper), outputs,
// lse and gradients, f64 to 1e-12 and f32 to 1e-5; the layout's tile classes equal the exact
// ones; the reductions (window >= T, stride 1, one block, one segment) give full causal
// attention exactly; the log-sum-exp merge equals softmax over the union, forward and
// gradients; the Sparse Transformer patterns reach every j <= i within two layers.
#include <functional>

#include "autograd/ops.h"
#include "core/attention.h"
#include "core/attention_partial.h"
#include "core/creation.h"
#include "core/kernels/attention_layout.h"
#include "core/random.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

using kernels::Tile;
using Pred = std::function<bool(int64_t h, int64_t p, int64_t j)>;

int64_t adist(int64_t a, int64_t b) { return a > b ? a - b : b - a; }

struct PatternCase {
  std::string what;
  kernels::SparsePattern pattern;
  Pred definition;  // the paper's definition, written independently of the pattern
};

// H = 4 query heads over G = 2 key/value heads.
constexpr int64_t kH = 4, kG = 2, kD = 5;

std::vector<PatternCase> pattern_cases(int64_t N) {
  std::vector<PatternCase> cs;
  cs.push_back(
      {"window 37", kernels::window_pattern(37), [](int64_t, int64_t p, int64_t j) { return adist(p, j) < 37; }});
  cs.push_back({"strided l 7 (merged heads)", kernels::strided_pattern(7, false),
                [](int64_t, int64_t p, int64_t j) { return adist(p, j) < 7 || (p - j) % 7 == 0; }});
  cs.push_back({"strided l 11 (split heads)", kernels::strided_pattern(11, true),
                [](int64_t h, int64_t p, int64_t j) { return h % 2 == 0 ? adist(p, j) < 11 : (p - j) % 11 == 0; }});
  cs.push_back({"fixed l 13 c 3 (merged)", kernels::fixed_pattern(13, 3, false),
                [](int64_t, int64_t p, int64_t j) { return p / 13 == j / 13 || j % 13 >= 10; }});
  cs.push_back({"fixed l 9 c 2 (split)", kernels::fixed_pattern(9, 2, true),
                [](int64_t h, int64_t p, int64_t j) { return h % 2 == 0 ? p / 9 == j / 9 : j % 9 >= 7; }});
  cs.push_back({"dilated window w 9, d 1 2 3 5", kernels::dilated_window_pattern(9, {1, 2, 3, 5}),
                [](int64_t h, int64_t p, int64_t j) {
                  const int64_t d = std::vector<int64_t>{1, 2, 3, 5}[size_t(h)];
                  return adist(p, j) < 9 * d && (p - j) % d == 0;
                }});
  cs.push_back({"global tokens 5", kernels::global_tokens_pattern(5),
                [](int64_t, int64_t p, int64_t j) { return p < 5 || j < 5; }});
  cs.push_back(
      {"longformer w 6 d 1 3, g 3", kernels::longformer_pattern(6, {1, 3}, 3), [](int64_t h, int64_t p, int64_t j) {
         const int64_t d = h % 2 == 0 ? 1 : 3;
         return p < 3 || j < 3 || (adist(p, j) < 6 * d && (p - j) % d == 0);
       }});
  cs.push_back({"segment dilated w 20 r 3", kernels::segment_dilated_pattern(20, 3),
                [](int64_t h, int64_t p, int64_t j) { return p / 20 == j / 20 && p % 3 == h % 3 && j % 3 == h % 3; }});
  // Random blocks: the definition is the drawn layout itself (checked for its law below).
  kernels::SparsePattern rnd = kernels::random_blocks_pattern(16, 2, 7, kH, N);
  cs.push_back({"random blocks b 16 r 2", rnd, rnd.visible});
  kernels::SparsePattern bb = kernels::bigbird_pattern(16, 1, 1, 1, 11, kH, N);
  cs.push_back({"bigbird b 16 wb 1 gb 1 r 1", bb, bb.visible});
  kernels::SparsePattern bb32 = kernels::bigbird_pattern(32, 1, 1, 1, 5, kH, N);
  cs.push_back({"bigbird b 32 (tile aligned)", bb32, bb32.visible});
  return cs;
}

struct Qkv {
  Tensor q, k, v, g;
};
Qkv make_qkv(int64_t T, int64_t S, DType dt, uint64_t seed) {
  Generator gen(seed);
  return {randn({1, kH, T, kD}, gen, dt), randn({1, kG, S, kD}, gen, dt), randn({1, kG, S, kD}, gen, dt),
          randn({1, kH, T, kD}, gen, dt)};
}

AttentionSpec spec_with(std::shared_ptr<const kernels::MaskTerm> term, bool causal, int64_t q_offset) {
  auto mask = std::make_shared<kernels::AttentionMask>();
  mask->terms = {std::move(term)};
  return AttentionSpec{.causal = causal, .q_offset = q_offset, .mask = mask};
}

// Fast kernel with `fast` against the reference kernel with `ref`: out, lse, dq, dk, dv.
double compare(const Qkv& x, const AttentionSpec& fast, const AttentionSpec& ref) {
  core::AttentionForward f = core::attention(x.q, x.k, x.v, fast), r = core::attention(x.q, x.k, x.v, ref, true);
  core::AttentionGrads gf = core::attention_backward(x.g, x.q, x.k, x.v, f.out, f.lse, fast);
  core::AttentionGrads gr = core::attention_backward(x.g, x.q, x.k, x.v, r.out, r.lse, ref, true);
  // lse is -inf for a query that sees nothing: compare exp(lse).
  double e = std::max({rel_rms(f.out, r.out), rel_rms(exp(f.lse), exp(r.lse)), rel_rms(gf.dq, gr.dq),
                       rel_rms(gf.dk, gr.dk), rel_rms(gf.dv, gr.dv)});
  return e;
}

void check_patterns(int64_t T) {
  double worst64 = 0, worst32 = 0;
  {
    for (const PatternCase& pc : pattern_cases(T)) {
      kernels::LayoutCache cache(pc.pattern);
      auto term = cache.get(kH, T);
      CHECK(cache.get(kH, T) == term);  // built once per shape
      auto dense = kernels::DenseMask::of(pc.definition, kH, T, T);
      // The layout's tile classes are the exact ones of the explicit mask.
      int64_t tiles = 0, skipped = 0;
      for (int64_t h = 0; h < kH; ++h)
        for (int64_t i0 = 0; i0 < T; i0 += 32)
          for (int64_t j0 = 0; j0 < T; j0 += 32) {
            const int64_t i1 = std::min(T, i0 + 32), j1 = std::min(T, j0 + 32);
            const Tile t = term->classify(0, h, i0, i1, j0, j1, 0);
            CHECK_MESSAGE(t == dense->classify(0, h, i0, i1, j0, j1, 0), pc.what, " T ", T, " tile ", i0, ",", j0);
            ++tiles;
            skipped += t == Tile::hidden;
          }
      MESSAGE(pc.what, " T ", T, ": ", skipped, " of ", tiles, " tiles hidden (", term->describe(), ")");
      for (bool causal : {true, false})
        for (DType dt : {DType::f64, DType::f32}) {
          const Qkv x = make_qkv(T, T, dt, uint64_t(T) * 7 + causal);
          const double err = compare(x, spec_with(term, causal, 0), spec_with(dense, causal, 0));
          double& worst = dt == DType::f64 ? worst64 : worst32;
          worst = std::max(worst, err);
          CHECK_MESSAGE(err <= (dt == DType::f64 ? 1e-12 : 1e-5), pc.what, " T ", T, causal ? " causal " : " ",
                        dtype_name(dt), ": rel rms ", err);
        }
      // Queries at an offset (the last 37 of 100 positions, as with a cache): conservative
      // classify on straddling tiles, fill exact.
      if (T == 100) {
        const Qkv x = make_qkv(37, T, DType::f64, 3);
        const double err = compare(x, spec_with(term, true, 63), spec_with(dense, true, 63));
        CHECK_MESSAGE(err <= 1e-12, pc.what, " q_offset 63: ", err);
      }
    }
  }
  MESSAGE("T ", T, ": largest rel rms error over the patterns, causal or not: f64 ", worst64, ", f32 ", worst32);
}

TEST_CASE("attention layout: every pattern at T 63, tiled kernel == dense masked reference (outputs, gradients)") {
  check_patterns(63);
}
TEST_CASE("attention layout: every pattern at T 100, tiled kernel == dense masked reference (outputs, gradients)") {
  check_patterns(100);
}

TEST_CASE("attention layout: random blocks draw r distinct causal blocks per query block, by seed") {
  const int64_t N = 200, b = 16, nb = (N + b - 1) / b;
  kernels::SparsePattern a = kernels::random_blocks_pattern(b, 3, 42, kH, N);
  kernels::SparsePattern a2 = kernels::random_blocks_pattern(b, 3, 42, kH, N);
  kernels::SparsePattern c = kernels::random_blocks_pattern(b, 3, 43, kH, N);
  int64_t differ = 0;
  for (int64_t h = 0; h < kH; ++h)
    for (int64_t qb = 0; qb < nb; ++qb) {
      int64_t n = 0;
      for (int64_t kb = 0; kb < nb; ++kb) {
        const bool s = a.visible(h, qb * b, kb * b);
        n += s;
        if (kb > qb) CHECK_FALSE(s);
        CHECK(s == a2.visible(h, qb * b, kb * b));
        differ += s != c.visible(h, qb * b, kb * b);
        // A block is all or nothing.
        CHECK(s == a.visible(h, qb * b + b - 1, std::min(N - 1, kb * b + 5)));
      }
      CHECK(n == std::min<int64_t>(3, qb + 1));
    }
  CHECK(differ > 0);
}

// Full causal attention: the plain kernel, no mask.
TEST_CASE("attention layout: reductions give full causal attention exactly") {
  const int64_t T = 100;
  const std::vector<std::pair<std::string, kernels::SparsePattern>> full = {
      {"window w = T", kernels::window_pattern(T)},
      {"window w > T", kernels::window_pattern(T + 17)},
      {"strided l = 1", kernels::strided_pattern(1, false)},
      {"fixed, one block l = T", kernels::fixed_pattern(T, 1, false)},
      {"dilated window, d 1, w = T", kernels::dilated_window_pattern(T, {1})},
      {"global tokens g = T", kernels::global_tokens_pattern(T)},
      {"bigbird, one block b >= T", kernels::bigbird_pattern(128, 0, 0, 0, 1, kH, T)},
      {"segment dilated, one segment, r = 1", kernels::segment_dilated_pattern(T, 1)},
  };
  for (DType dt : {DType::f64, DType::f32}) {
    const Qkv x = make_qkv(T, T, dt, 5);
    const AttentionSpec plain{.causal = true};
    core::AttentionForward f0 = core::attention(x.q, x.k, x.v, plain);
    core::AttentionGrads g0 = core::attention_backward(x.g, x.q, x.k, x.v, f0.out, f0.lse, plain);
    for (const auto& [what, pat] : full) {
      const AttentionSpec s = spec_with(kernels::LayoutCache(pat).get(kH, T), true, 0);
      core::AttentionForward f = core::attention(x.q, x.k, x.v, s);
      core::AttentionGrads g = core::attention_backward(x.g, x.q, x.k, x.v, f.out, f.lse, s);
      const double e = std::max({max_abs_diff(f.out, f0.out), max_abs_diff(f.lse, f0.lse), max_abs_diff(g.dq, g0.dq),
                                 max_abs_diff(g.dk, g0.dk), max_abs_diff(g.dv, g0.dv)});
      CHECK_MESSAGE(e == 0, what, " ", dtype_name(dt), ": max abs diff ", e);
    }
  }
}

TEST_CASE("attention merge: parts over disjoint keys merge to softmax over the union") {
  const int64_t T = 63, S = 63;
  // Three disjoint parts: a window, the strided columns outside it, the rest.
  auto part = [](int64_t c) {
    return [c](int64_t h, int64_t p, int64_t j) {
      const bool win = adist(p, j) < 10, strided = (p - j) % 7 == 0 && !win;
      return c == 0 ? win : c == 1 ? strided : (!win && !strided && (h + j) % 2 == 0);
    };
  };
  const Pred uni = [&](int64_t h, int64_t p, int64_t j) {
    return part(0)(h, p, j) || part(1)(h, p, j) || part(2)(h, p, j);
  };
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    Generator gen(17);
    Tensor q = randn({2, kH, T, kD}, gen, dt).requires_grad_(), k = randn({2, kG, S, kD}, gen, dt).requires_grad_(),
           v = randn({2, kG, S, kD}, gen, dt).requires_grad_(), g = randn({2, kH, T, kD}, gen, dt);
    std::vector<core::AttentionPart> parts;
    for (int64_t c = 0; c < 3; ++c)
      parts.push_back({k, v, spec_with(kernels::DenseMask::of(part(c), kH, T, S), true, 0)});
    const AttentionSpec whole = spec_with(kernels::DenseMask::of(uni, kH, T, S), true, 0);
    core::AttentionForward m = core::attention_parts(q.detach(), parts);
    core::AttentionForward u = core::attention(q.detach(), k.detach(), v.detach(), whole, true);
    CHECK_MESSAGE(rel_rms(m.out, u.out) <= tol, "merged out ", rel_rms(m.out, u.out));
    CHECK_MESSAGE(rel_rms(exp(m.lse), exp(u.lse)) <= tol, "merged lse ", rel_rms(exp(m.lse), exp(u.lse)));
    // Gradients through tz::attention_merged against tz::attention over the union.
    Tensor ym = attention_merged(q, parts);
    CHECK(rel_rms(ym, u.out) <= tol);
    (ym * g).sum().backward();
    Tensor dq = q.grad().detach(), dk = k.grad().detach(), dv = v.grad().detach();
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
    (attention(q, k, v, whole) * g).sum().backward();
    CHECK_MESSAGE(rel_rms(dq, q.grad()) <= tol, "dq ", rel_rms(dq, q.grad()));
    CHECK_MESSAGE(rel_rms(dk, k.grad()) <= tol, "dk ", rel_rms(dk, k.grad()));
    CHECK_MESSAGE(rel_rms(dv, v.grad()) <= tol, "dv ", rel_rms(dv, v.grad()));
  }
  // Key chunks as separate tensors (memory-efficient attention's split): chunk c holds keys
  // [c0, c1), its queries sit at q_offset - c0; not causal.
  Generator gen(3);
  Tensor q = randn({1, 2, 40, 4}, gen, DType::f64), k = randn({1, 2, 70, 4}, gen, DType::f64),
         v = randn({1, 2, 70, 4}, gen, DType::f64);
  std::vector<core::AttentionPart> chunks;
  for (int64_t c0 = 0; c0 < 70; c0 += 32) {
    const int64_t n = std::min<int64_t>(32, 70 - c0);
    chunks.push_back({k.narrow(2, c0, n), v.narrow(2, c0, n), AttentionSpec{}});
  }
  core::AttentionForward m = core::attention_parts(q, chunks), u = core::attention(q, k, v, AttentionSpec{}, true);
  CHECK(rel_rms(m.out, u.out) <= 1e-12);
  CHECK(rel_rms(m.lse, u.lse) <= 1e-12);
  // A query no part lets see anything: o = 0, lse = -inf.
  core::AttentionForward empty_part{zeros({1, 1, 1, 2}, DType::f64), full({1, 1, 1}, -INFINITY, DType::f64)};
  core::AttentionForward e = core::attention_merge({empty_part, empty_part});
  CHECK(e.out.to_vector<double>() == std::vector<double>{0, 0});
  CHECK(std::isinf(e.lse.item()));
}

// Two layers of the pattern, read off the layout (its mask term's fill): j <= i is reachable
// from i when one layer's pattern has (i, j) (the residual carries it through the other) or
// some k with j <= k <= i has (i, k) in one layer's pattern and (k, j) in the other's.
TEST_CASE("attention layout: Sparse Transformer patterns reach every j <= i within two layers") {
  const int64_t N = 100;
  struct Rc {
    std::string what;
    kernels::SparsePattern pattern;
  };
  for (const Rc& rc :
       {Rc{"strided l 10", kernels::strided_pattern(10, true)}, Rc{"strided l 7", kernels::strided_pattern(7, true)},
        Rc{"fixed l 10 c 1", kernels::fixed_pattern(10, 1, true)},
        Rc{"fixed l 8 c 2", kernels::fixed_pattern(8, 2, true)}}) {
    auto term = kernels::LayoutCache(rc.pattern).get(2, N);
    std::vector<uint8_t> a(size_t(N * N)), b(size_t(N * N));  // head 0 = A1, head 1 = A2
    term->fill(0, 0, 0, N, 0, N, 0, a.data(), N);
    term->fill(0, 1, 0, N, 0, N, 0, b.data(), N);
    int64_t unreached = 0, one_layer_misses = 0, edges = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        edges += a[size_t(i * N + j)] + b[size_t(i * N + j)];
        one_layer_misses += !a[size_t(i * N + j)] && !b[size_t(i * N + j)];
        bool r = a[size_t(i * N + j)] || b[size_t(i * N + j)];
        for (int64_t k = j; k <= i && !r; ++k)
          r = (a[size_t(i * N + k)] && b[size_t(k * N + j)]) || (b[size_t(i * N + k)] && a[size_t(k * N + j)]);
        unreached += !r;
      }
    MESSAGE(rc.what, ": ", edges, " causal edges of ", N * (N + 1), " in the two heads, ", one_layer_misses,
            " pairs missed by one layer, ", unreached, " unreached in two");
    CHECK(unreached == 0);
    CHECK(one_layer_misses > 0);  // not vacuous: one layer does not reach everything
  }
}

TEST_CASE("attention layout: refuses another shape, bad arguments") {
  auto term = kernels::LayoutCache(kernels::window_pattern(4)).get(2, 10);
  CHECK_THROWS_AS(term->check(1, 2, 11), Error);
  CHECK_THROWS_AS(term->check(1, 3, 10), Error);
  CHECK_THROWS_AS(kernels::window_pattern(0), Error);
  CHECK_THROWS_AS(kernels::fixed_pattern(4, 5, false), Error);
  CHECK_THROWS_AS(kernels::BlockLayout(kernels::random_blocks_pattern(4, 1, 1, 3, 10), 2, 10), Error);
  Generator gen(1);
  Tensor q = randn({1, 2, 10, 3}, gen), k = randn({1, 2, 11, 3}, gen);
  CHECK_THROWS_AS(core::attention(q, k, k, spec_with(term, true, 0)), Error);
}

}  // namespace
}  // namespace tz::testing
