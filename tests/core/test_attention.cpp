// Fused attention (core/kernels/attention.h): the tiled online-softmax kernels against the
// naive materialising references, and the autograd op against the composite
// nn::scaled_dot_product_attention_ref (matmul, scale, masked_fill, softmax, matmul) -
// forward outputs and q/k/v gradients, over awkward shapes (T around the 64-row tile, D not
// a multiple of 8, S > T with a query offset), non-contiguous inputs, causal or not, f32
// with SIMD on and off, and f64.
// Then masks and biases as data (core/kernels/attention_mask.h): each mask term against its
// definition; the fast kernels against the references and the fused op against
// attention_composite with every term alone, combined, with and without causal, with a
// relative bias and with G = 1, 2, H key/value heads; that hidden tiles are skipped; that
// queries seeing no key give 0 and no NaN.
#include <atomic>
#include <bit>
#include <functional>

#include "autograd/ops.h"
#include "core/attention.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/attention.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "nn/attention/attention.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

// One configuration: q [B, H, T, D] at key positions q_offset.., k and v [B, H, S, D].
struct Case {
  int64_t B, H, T, S, D, q_offset;
  bool causal;
};

// Leaves for a case, stored in a layout chosen by `layout`:
//   0 contiguous [B, H, T, D] leaves;
//   1 head views of one packed qkv [B, T, 3, H, D] leaf (as in nn/attention) - needs S == T;
//   2 k, v narrowed out of a [B, H, S + 5, D] cache-like leaf, q stored transposed (last
//     dim strided, so the kernel path copies it).
struct Inputs {
  std::vector<Tensor> leaves;  // what the gradients are compared on
  Tensor q, k, v;
};
Inputs make_inputs(const Case& c, int layout, DType dt, uint64_t seed) {
  Generator gen(seed);
  Inputs in;
  if (layout == 1) {
    Tensor qkv = randn({c.B, c.T, 3, c.H, c.D}, gen, dt).requires_grad_();
    in.leaves = {qkv};
    in.q = qkv.select(2, 0).permute({0, 2, 1, 3});
    in.k = qkv.select(2, 1).permute({0, 2, 1, 3});
    in.v = qkv.select(2, 2).permute({0, 2, 1, 3});
  } else if (layout == 2) {
    Tensor qt = randn({c.B, c.H, c.D, c.T}, gen, dt).requires_grad_();
    Tensor kc = randn({c.B, c.H, c.S + 5, c.D}, gen, dt).requires_grad_();
    Tensor vc = randn({c.B, c.H, c.S + 5, c.D}, gen, dt).requires_grad_();
    in.leaves = {qt, kc, vc};
    in.q = qt.transpose(2, 3);
    in.k = kc.narrow(2, 3, c.S);
    in.v = vc.narrow(2, 2, c.S);
  } else {
    Tensor q = randn({c.B, c.H, c.T, c.D}, gen, dt).requires_grad_();
    Tensor k = randn({c.B, c.H, c.S, c.D}, gen, dt).requires_grad_();
    Tensor v = randn({c.B, c.H, c.S, c.D}, gen, dt).requires_grad_();
    in.leaves = {q, k, v};
    in.q = q, in.k = k, in.v = v;
  }
  return in;
}

// Output and leaf gradients of sum(attn(q, k, v) * G) for a fixed random G.
struct Result {
  Tensor out;
  std::vector<Tensor> grads;
};
template <class F>
Result run(const Case& c, int layout, DType dt, F attn) {
  Inputs in = make_inputs(c, layout, dt, 1000 + uint64_t(c.T * 7 + c.D));
  Generator gen(77);
  Tensor G = randn({c.B, c.H, c.T, c.D}, gen, dt);
  Tensor out = attn(in.q, in.k, in.v);
  (out * G).sum().backward();
  Result r{out.detach(), {}};
  for (auto& l : in.leaves) r.grads.push_back(l.grad());
  return r;
}

// Relative RMS error, or for a tensor that is zero in exact arithmetic (dq and dk when each
// query sees one key: softmax of one score is constant), an absolute error.
#define CHECK_NEAR_T(a, b, tol)                                                                                       \
  CHECK_MESSAGE((rel_rms((a), (b)) <= (tol) || max_abs_diff((a), (b)) <= (tol)), "rel rms error ", rel_rms((a), (b)), \
                ", max abs error ", max_abs_diff((a), (b)))

void compare(const Result& a, const Result& b, double tol) {
  CHECK_NEAR_T(a.out, b.out, tol);
  for (size_t i = 0; i < a.grads.size(); ++i) {
    CAPTURE(i);
    CHECK_NEAR_T(a.grads[i], b.grads[i], tol);
  }
}

std::vector<Case> awkward_cases() {
  std::vector<Case> cs;
  for (int64_t T : {1, 7, 63, 64, 65, 200})
    for (int64_t D : {16, 60, 64})
      for (bool causal : {true, false}) cs.push_back({2, 2, T, T, D, 0, causal});
  // S > T: the queries are the last T of S keys (KV cache), or sit in the middle.
  for (bool causal : {true, false}) {
    cs.push_back({1, 3, 7, 130, 60, 123, causal});
    cs.push_back({2, 2, 65, 200, 64, 135, causal});
    cs.push_back({1, 2, 1, 77, 16, 76, causal});
    cs.push_back({2, 3, 1, 272, 64, 271, causal});  // decoding: 16-key blocks and a tail of 0
    cs.push_back({1, 2, 20, 150, 64, 40, causal});  // later keys hidden when causal
    cs.push_back({1, 2, 9, 9, 5, 0, causal});       // D < 8: only the masked SIMD tail
    cs.push_back({1, 1, 40, 70, 128, 30, causal});  // wide heads
    cs.push_back({1, 2, 33, 33, 100, 0, causal});   // D tails of the 64-column blocks
    cs.push_back({2, 1, 10, 12, 20, 2, causal});
  }
  return cs;
}

}  // namespace

TEST_CASE("attention kernels: fast vs reference, forward (out, lse) and backward") {
  for (DType dt : {DType::f32, DType::f64})
    for (SimdLevel level : simd_levels()) {
      if (dt == DType::f64 && level != SimdLevel::off) continue;  // f64 has only the portable loops
      SimdLevelGuard guard(level);
      const double tol = dt == DType::f32 ? 2e-5 : 1e-11;
      for (const Case& c : awkward_cases())
        for (int layout : {0, 2}) {
          CAPTURE(c.T);
          CAPTURE(c.S);
          CAPTURE(c.D);
          CAPTURE(c.q_offset);
          CAPTURE(c.causal);
          CAPTURE(layout);
          CAPTURE(simd_level_name(level));
          CAPTURE(dtype_name(dt));
          Inputs in = make_inputs(c, layout, dt, 5);
          Tensor q = in.q.detach(), k = in.k.detach(), v = in.v.detach();
          core::AttentionForward f = core::attention(q, k, v, c.causal, c.q_offset, 0);
          core::AttentionForward r = core::attention(q, k, v, c.causal, c.q_offset, 0, true);
          CHECK_CLOSE(f.out, r.out, tol);
          CHECK_CLOSE(f.lse, r.lse, tol);
          Generator gen(9);
          Tensor g = randn(q.shape(), gen, dt);
          core::AttentionGrads gf = core::attention_backward(g, q, k, v, f.out, f.lse, c.causal, c.q_offset, 0);
          core::AttentionGrads gr = core::attention_backward(g, q, k, v, r.out, r.lse, c.causal, c.q_offset, 0, true);
          CHECK_NEAR_T(gf.dq, gr.dq, tol);
          CHECK_NEAR_T(gf.dk, gr.dk, tol);
          CHECK_NEAR_T(gf.dv, gr.dv, tol);
        }
    }
}

TEST_CASE("attention kernels: one query row's 16-key dot blocks give the 4-key blocks' scores bit for bit") {
  // attn_dots with one row (decoding) reduces 16 keys at a time by shuffles; each score must
  // be what the same row gets among several rows (4-key blocks, hsum4), to the last bit.
  bool ran = false;
  for (SimdLevel level : simd_levels()) {
    if (level != SimdLevel::avx512) continue;
    ran = true;
    Generator gen(3);
    for (int64_t D : {5, 16, 20, 60, 64, 80})
      for (int64_t N : {1, 15, 16, 17, 47, 64, 77}) {
        CAPTURE(D);
        CAPTURE(N);
        const int64_t lda = D + 3, ldb = D + 5;  // strided rows
        std::vector<float> A = randn({2, lda}, gen).to_vector<float>(), B = randn({N, ldb}, gen).to_vector<float>();
        std::vector<float> one(static_cast<size_t>(N)), two(static_cast<size_t>(2 * N));
        kernels::avx512::attn_dots(one.data(), N, A.data(), lda, 1, B.data(), ldb, N, D, 0.3f);
        kernels::avx512::attn_dots(two.data(), N, A.data(), lda, 2, B.data(), ldb, N, D, 0.3f);
        int64_t differ = 0;
        for (int64_t j = 0; j < N; ++j) differ += std::bit_cast<uint32_t>(one[size_t(j)]) != std::bit_cast<uint32_t>(two[size_t(j)]);
        CHECK(differ == 0);
      }
  }
  if (!ran) MESSAGE("this CPU has no AVX-512: nothing to compare");
}

TEST_CASE("attention op vs the composite scaled_dot_product_attention_ref: outputs and gradients") {
  for (DType dt : {DType::f32, DType::f64})
    for (SimdLevel level : simd_levels()) {
      if (dt == DType::f64 && level != SimdLevel::off) continue;  // f64 has only the portable loops
      SimdLevelGuard guard(level);
      const double tol = dt == DType::f32 ? 3e-5 : 1e-10;
      for (const Case& c : awkward_cases())
        for (int layout : {0, 1, 2}) {
          if (layout == 1 && c.S != c.T) continue;
          CAPTURE(c.T);
          CAPTURE(c.S);
          CAPTURE(c.D);
          CAPTURE(c.q_offset);
          CAPTURE(c.causal);
          CAPTURE(layout);
          CAPTURE(simd_level_name(level));
          CAPTURE(dtype_name(dt));
          Result fused = run(c, layout, dt, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
            Tensor y = attention(q, k, v, c.causal, c.q_offset);
            CHECK(y.grad_fn_name() == std::string("attention"));
            return y;
          });
          Result nn_default = run(c, layout, dt, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
            return nn::scaled_dot_product_attention(q, k, v, c.causal, c.q_offset);
          });
          Result composite = run(c, layout, dt, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
            return nn::scaled_dot_product_attention_ref(q, k, v, c.causal, c.q_offset, Tensor());
          });
          compare(fused, composite, tol);
          compare(nn_default, fused, 0);  // the nn entry point takes the fused path
        }
    }
}

TEST_CASE("attention: explicit scale, output layout, score bias falls back to the composite") {
  Generator gen(3);
  Tensor q = randn({1, 2, 9, 8}, gen, DType::f64), k = randn({1, 2, 9, 8}, gen, DType::f64),
         v = randn({1, 2, 9, 8}, gen, DType::f64);
  Tensor a = attention(q, k, v, true, 0, 0.3);
  Tensor b = nn::scaled_dot_product_attention_ref(q * (0.3 * std::sqrt(8.0)), k, v, true, 0, Tensor());
  CHECK_CLOSE(a, b, 1e-12);
  // The heads are interleaved in memory: merging them is a view.
  CHECK(a.permute({0, 2, 1, 3}).is_contiguous());
  Tensor bias = randn({1, 2, 9, 9}, gen, DType::f64);
  Tensor c = nn::scaled_dot_product_attention(q, k, v, true, 0, bias);
  CHECK(std::string(c.grad_fn_name() ? c.grad_fn_name() : "") != "attention");
  CHECK_CLOSE(c, nn::scaled_dot_product_attention_ref(q, k, v, true, 0, bias), 1e-12);
}

TEST_CASE("attention: errors name the op and the shapes, empty inputs") {
  Tensor q = zeros({1, 2, 4, 8}), k = zeros({1, 2, 5, 8});
  CHECK_THROWS_WITH_AS(attention(q, k, zeros({1, 2, 5, 7}), true), doctest::Contains("attention: shape mismatch"),
                       Error);
  CHECK_THROWS_WITH_AS(attention(zeros({2, 4, 8}), k, k, true), doctest::Contains("attention: expected q"), Error);
  CHECK_THROWS_WITH_AS(attention(q, k.to(DType::f64), k, true), doctest::Contains("dtypes differ"), Error);
  CHECK_THROWS_WITH_AS(attention(q, k, k, true, -1), doctest::Contains("q_offset"), Error);
  CHECK(attention(zeros({1, 2, 0, 8}), k, k, true).shape() == Shape{1, 2, 0, 8});
}

TEST_CASE("attention: results do not depend on the thread count") {
  Generator gen(4);
  Tensor q = randn({2, 3, 100, 32}, gen), k = randn({2, 3, 100, 32}, gen), v = randn({2, 3, 100, 32}, gen);
  int prev = get_num_threads();
  set_num_threads(1);
  Tensor a = attention(q, k, v, true);
  set_num_threads(2);
  Tensor b = attention(q, k, v, true);
  set_num_threads(prev);
  CHECK(max_abs_diff(a, b) == 0);
}

// ---- masks, relative bias, grouped key/value heads ----------------------------------------

namespace {

using kernels::AttentionMask;
using kernels::ForgottenKeysMask;
using kernels::KeyPaddingMask;
using kernels::MaskTerm;
using kernels::Tile;
using kernels::WindowMask;

// Flags [B, S] (i64): row 0 pads the last 9 keys and every key j % 5 == 2; row 1 pads
// everything (a batch row whose queries see no key); further rows keep every key.
Tensor padding_flags(int64_t B, int64_t S) {
  std::vector<int64_t> keep(static_cast<size_t>(B * S), 1);
  for (int64_t j = 0; j < S; ++j) keep[size_t(j)] = j < S - 9 && j % 5 != 2;
  if (B > 1)
    for (int64_t j = 0; j < S; ++j) keep[size_t(S + j)] = 0;
  return from_vector(keep, {B, S});
}
// Forgotten keys [B, S] (i64): about 30 % of the keys, a different pattern per row.
Tensor forgotten_flags(int64_t B, int64_t S) {
  std::vector<int64_t> f(static_cast<size_t>(B * S));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < S; ++j) f[size_t(b * S + j)] = (j * 37 + b * 11 + 5) % 10 < 3;
  return from_vector(f, {B, S});
}

struct MaskKind {
  const char* name;
  int64_t window = 0;  // 0: no window term
  bool padding = false, forgotten = false;
};
const std::vector<MaskKind>& mask_kinds() {
  static const std::vector<MaskKind> ks = {
      {.name = "none"},
      {.name = "window 1", .window = 1},
      {.name = "window 5", .window = 5},
      {.name = "window > S", .window = 1000},
      {.name = "padding", .padding = true},
      {.name = "forgotten keys", .forgotten = true},
      {.name = "window 5 & padding & forgotten keys", .window = 5, .padding = true, .forgotten = true},
  };
  return ks;
}

// q [B, H, T, D] at key positions q_offset.., k and v [B, G, S, D].
struct Dims {
  int64_t B, H, G, T, S, D, q_offset;
};
std::vector<Dims> masked_dims() {
  return {
      {1, 1, 1, 63, 70, 60, 7},                                                      // B * H = 1
      {2, 4, 1, 63, 70, 20, 7},                                                      // multi-query
      {2, 4, 2, 63, 70, 20, 7},                                                      // grouped-query
      {2, 4, 4, 63, 70, 20, 7}, {2, 2, 2, 33, 33, 16, 0}, {2, 2, 1, 1, 70, 60, 69},  // one decoding step
  };
}

AttentionSpec spec_for(const MaskKind& m, const Dims& d, bool causal, const Tensor& rel_bias) {
  AttentionSpec s{.causal = causal, .q_offset = d.q_offset, .rel_bias = rel_bias};
  auto mask = std::make_shared<AttentionMask>();
  if (m.window > 0) mask->terms.push_back(std::make_shared<WindowMask>(m.window));
  if (m.padding) mask->terms.push_back(core::key_padding_mask(padding_flags(d.B, d.S)));
  if (m.forgotten) mask->terms.push_back(core::forgotten_keys_mask(forgotten_flags(d.B, d.S)));
  if (!mask->empty()) s.mask = mask;
  return s;
}

// Leaves q, k, v (and the bias table) for d: contiguous, or (strided) q stored transposed
// and k, v narrowed out of longer cache-like leaves.
Inputs make_inputs_g(const Dims& d, bool strided, DType dt, uint64_t seed) {
  Generator gen(seed);
  Inputs in;
  if (strided) {
    Tensor qt = randn({d.B, d.H, d.D, d.T}, gen, dt).requires_grad_();
    Tensor kc = randn({d.B, d.G, d.S + 5, d.D}, gen, dt).requires_grad_();
    Tensor vc = randn({d.B, d.G, d.S + 5, d.D}, gen, dt).requires_grad_();
    in.leaves = {qt, kc, vc};
    in.q = qt.transpose(2, 3);
    in.k = kc.narrow(2, 3, d.S);
    in.v = vc.narrow(2, 2, d.S);
  } else {
    in.q = randn({d.B, d.H, d.T, d.D}, gen, dt).requires_grad_();
    in.k = randn({d.B, d.G, d.S, d.D}, gen, dt).requires_grad_();
    in.v = randn({d.B, d.G, d.S, d.D}, gen, dt).requires_grad_();
    in.leaves = {in.q, in.k, in.v};
  }
  return in;
}

// lse with -inf for queries that see no key: the -inf entries must match exactly, the rest
// within a relative RMS tol.
void check_lse(const Tensor& a, const Tensor& b, double tol) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  int64_t bad = 0;
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isinf(x[i]) || std::isinf(y[i]) || std::isnan(x[i]) || std::isnan(y[i])) {
      bad += !(x[i] == y[i] && y[i] < 0);
      continue;
    }
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  CHECK_MESSAGE(bad == 0, bad, " lse entries differ in being -inf (or are NaN)");
  CHECK(std::sqrt(num) / std::max(std::sqrt(den), 1e-30) <= tol);
}

std::string describe(const Dims& d) {
  return cat_str("B ", d.B, " H ", d.H, " G ", d.G, " T ", d.T, " S ", d.S, " D ", d.D, " q_offset ", d.q_offset);
}

// One masked-attention case: its sizes, mask, causality, bias and input layout.
struct MaskedCase {
  DType dt;
  Dims d;
  MaskKind m;
  bool causal, with_bias, strided;
};

// Runs `body` on every masked case (f32 and f64 x sizes x masks x causal x bias), the inputs
// alternating between contiguous and strided (`strided_first` picks which comes first).
void for_each_masked_case(bool strided_first, const std::function<void(const MaskedCase&)>& body) {
  int64_t n = 0;
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : masked_dims())
      for (const MaskKind& m : mask_kinds())
        for (bool causal : {false, true})
          for (bool with_bias : {false, true}) {
            const bool strided = (n++ % 2 == 0) == strided_first;
            CAPTURE(describe(d));
            CAPTURE(m.name);
            CAPTURE(causal);
            CAPTURE(with_bias);
            CAPTURE(strided);
            CAPTURE(dtype_name(dt));
            body({dt, d, m, causal, with_bias, strided});
          }
}

}  // namespace

TEST_CASE("attention mask terms: fill matches each definition, classify agrees with fill") {
  const int64_t B = 2, S = 70;
  Tensor keep = padding_flags(B, S), forgot = forgotten_flags(B, S);
  std::vector<uint8_t> forgot8;
  for (int64_t f : forgot.to_vector<int64_t>()) forgot8.push_back(uint8_t(f));
  auto kp = std::make_shared<KeyPaddingMask>(keep.data<int64_t>(), B, S);
  auto fk64 = std::make_shared<ForgottenKeysMask>(forgot.data<int64_t>(), B, S);
  auto fk8 = std::make_shared<ForgottenKeysMask>(forgot8.data(), B, S);
  auto kp_at = [&](int64_t b, int64_t j) { return keep.data<int64_t>()[b * S + j] != 0; };
  auto fk_at = [&](int64_t b, int64_t j) { return forgot.data<int64_t>()[b * S + j] != 0; };
  struct Named {
    std::shared_ptr<const MaskTerm> term;
    std::function<bool(int64_t b, int64_t p, int64_t j)> visible;  // p = q_offset + i
  };
  std::vector<Named> terms;
  for (int64_t w : {1, 5, 1000})
    terms.push_back({std::make_shared<WindowMask>(w), [w](int64_t, int64_t p, int64_t j) { return p - j < w; }});
  for (auto [L, M] : {std::pair<int64_t, int64_t>{1, 0}, {7, 7}, {16, 40}, {33, 5}})
    terms.push_back({std::make_shared<kernels::SegmentMask>(L, M),
                     [L, M](int64_t, int64_t p, int64_t j) { return j >= p / L * L - M; }});
  terms.push_back({kp, [&](int64_t b, int64_t, int64_t j) { return kp_at(b, j); }});
  terms.push_back({fk64, [&](int64_t b, int64_t p, int64_t j) { return !(fk_at(b, j) && p > j); }});
  terms.push_back({fk8, [&](int64_t b, int64_t p, int64_t j) { return !(fk_at(b, j) && p > j); }});
  // The AND of three terms, as one more "term".
  auto all = std::make_shared<AttentionMask>();
  all->terms = {std::make_shared<WindowMask>(5), kp, fk8};
  struct AndTerm : MaskTerm {
    std::shared_ptr<AttentionMask> m;
    Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t qo) const override {
      return m->classify(b, h, i0, i1, j0, j1, qo);
    }
    void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t qo, uint8_t* out,
              int64_t ld) const override {
      m->fill(b, h, i0, ni, j0, nj, qo, out, ld);
    }
    std::string describe() const override { return m->describe(); }
  };
  auto and_term = std::make_shared<AndTerm>();
  and_term->m = all;
  terms.push_back(
      {and_term, [&](int64_t b, int64_t p, int64_t j) { return p - j < 5 && kp_at(b, j) && !(fk_at(b, j) && p > j); }});
  CHECK(all->describe() == "window(w=5) & key_padding(B=2, S=70) & forgotten_keys(B=2, S=70)");

  Generator gen(12);
  std::vector<int64_t> r = randint(0, 1 << 30, {4000}, gen).to_vector<int64_t>();
  size_t next = 0;
  auto pick = [&](int64_t n) { return r[next++ % r.size()] % n; };
  int64_t seen[3] = {0, 0, 0};
  for (const Named& t : terms) {
    CAPTURE(t.term->describe());
    for (int rep = 0; rep < 300; ++rep) {
      const int64_t b = pick(B), qo = pick(3) == 0 ? 0 : pick(40);
      const int64_t i0 = pick(63), i1 = i0 + 1 + pick(std::min<int64_t>(32, 63 - i0));
      const int64_t j0 = pick(S), j1 = j0 + 1 + pick(std::min<int64_t>(32, S - j0));
      const int64_t ni = i1 - i0, nj = j1 - j0, ld = nj + 3;
      std::vector<uint8_t> out(size_t(ni * ld), 7);
      t.term->fill(b, 0, i0, ni, j0, nj, qo, out.data(), ld);
      int64_t vis = 0, wrong = 0;
      for (int64_t rr = 0; rr < ni; ++rr)
        for (int64_t c = 0; c < nj; ++c) {
          const bool want = t.visible(b, qo + i0 + rr, j0 + c);
          wrong += out[size_t(rr * ld + c)] != uint8_t(want);
          vis += want;
        }
      CHECK(wrong == 0);
      // Each single term is exact at tile level: hidden iff no pair is visible, visible iff
      // all are. Their AND may be conservative (partial where the terms' hidden pairs
      // together cover the tile), never wrong.
      const Tile want = vis == 0 ? Tile::hidden : vis == ni * nj ? Tile::visible : Tile::partial;
      const Tile got = t.term->classify(b, 0, i0, i1, j0, j1, qo);
      if (t.term == and_term)
        CHECK((got == want || got == Tile::partial));
      else
        CHECK(int(got) == int(want));
      seen[int(want)]++;
    }
  }
  CHECK(seen[0] > 0);  // the random tiles reached all three classes
  CHECK(seen[1] > 0);
  CHECK(seen[2] > 0);
  CHECK_THROWS_WITH_AS(WindowMask(0), doctest::Contains("w must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(kernels::SegmentMask(0, 3), doctest::Contains("segment length L >= 1"), Error);
}

TEST_CASE("masked attention kernels: fast vs reference, every term, causal or not, bias, G") {
  int64_t n_empty_rows = 0;
  for_each_masked_case(false, [&](const MaskedCase& c) {
    const Dims& d = c.d;
    const DType dt = c.dt;
    Inputs in = make_inputs_g(d, c.strided, dt, 31 + uint64_t(d.T + d.G));
    Tensor q = in.q.detach(), k = in.k.detach(), v = in.v.detach();
    Generator gen(8);
    Tensor bias = c.with_bias ? randn({d.H, d.T + d.S - 1}, gen, dt) : Tensor();
    AttentionSpec spec = spec_for(c.m, d, c.causal, bias);
    Tensor g = randn(q.shape(), gen, dt);
    core::AttentionForward r = core::attention(q, k, v, spec, true);
    core::AttentionGrads gr = core::attention_backward(g, q, k, v, r.out, r.lse, spec, true);
    for (double x : r.lse.to_vector<double>()) n_empty_rows += std::isinf(x);
    for (SimdLevel level : simd_levels()) {
      if (dt == DType::f64 && level != SimdLevel::off) continue;  // f64: the portable loops only
      SimdLevelGuard guard(level);
      CAPTURE(simd_level_name(level));
      const double tol = dt == DType::f32 ? 2e-5 : 1e-11;
      core::AttentionForward f = core::attention(q, k, v, spec);
      CHECK_CLOSE(f.out, r.out, tol);
      check_lse(f.lse, r.lse, tol);
      core::AttentionGrads gf = core::attention_backward(g, q, k, v, f.out, f.lse, spec);
      CHECK_NEAR_T(gf.dq, gr.dq, tol);
      CHECK_NEAR_T(gf.dk, gr.dk, tol);
      CHECK_NEAR_T(gf.dv, gr.dv, tol);
      if (c.with_bias) CHECK_NEAR_T(gf.drel_bias, gr.drel_bias, tol);
      CHECK(all_finite(f.out));
      CHECK(all_finite(gf.dq));
      CHECK(all_finite(gf.dk));
      CHECK(all_finite(gf.dv));
    }
  });
  CHECK(n_empty_rows > 0);  // the padding cases did reach queries that see no key
}

TEST_CASE("masked attention op vs attention_composite: outputs and gradients of q, k, v, rel_bias") {
  for_each_masked_case(true, [&](const MaskedCase& c) {
    const Dims& d = c.d;
    const DType dt = c.dt;
    // Output and leaf gradients (q, k, v leaves, then the bias table) of sum(attn * G).
    auto run_spec = [&](bool fused) {
      Inputs in = make_inputs_g(d, c.strided, dt, 57 + uint64_t(d.S + d.G));
      Generator gen(9);
      Tensor bias = c.with_bias ? randn({d.H, d.T + d.S - 1}, gen, dt).requires_grad_() : Tensor();
      Tensor G = randn({d.B, d.H, d.T, d.D}, gen, dt);
      AttentionSpec spec = spec_for(c.m, d, c.causal, bias);
      Tensor out = fused ? attention(in.q, in.k, in.v, spec) : attention_composite(in.q, in.k, in.v, spec);
      if (fused) CHECK(out.grad_fn_name() == std::string("attention"));
      (out * G).sum().backward();
      Result r{out.detach(), {}};
      for (auto& l : in.leaves) r.grads.push_back(l.grad());
      if (c.with_bias) r.grads.push_back(bias.grad());
      return r;
    };
    Result composite = run_spec(false);
    for (SimdLevel level : simd_levels()) {
      if (dt == DType::f64 && level != SimdLevel::off) continue;
      SimdLevelGuard guard(level);
      CAPTURE(simd_level_name(level));
      compare(run_spec(true), composite, dt == DType::f32 ? 3e-5 : 1e-10);
    }
  });
}

TEST_CASE("masks change the output, a window wider than S does not") {
  const Dims d{2, 2, 2, 63, 70, 60, 7};
  Inputs in = make_inputs_g(d, false, DType::f64, 3);
  Tensor q = in.q.detach(), k = in.k.detach(), v = in.v.detach();
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    Tensor plain = core::attention(q, k, v, AttentionSpec{.causal = causal, .q_offset = d.q_offset}).out;
    for (const MaskKind& m : mask_kinds()) {
      CAPTURE(m.name);
      Tensor y = core::attention(q, k, v, spec_for(m, d, causal, Tensor())).out;
      if (std::string(m.name) == "none" || m.window > d.S + d.q_offset + d.T)
        CHECK(max_abs_diff(y, plain) == 0);  // every tile classified visible: the same arithmetic
      else
        CHECK(rel_rms(y, plain) > 0.05);
    }
    // An AttentionMask with no terms takes the plain path.
    AttentionSpec empty{.causal = causal, .q_offset = d.q_offset, .mask = std::make_shared<AttentionMask>()};
    CHECK(max_abs_diff(core::attention(q, k, v, empty).out, plain) == 0);
  }
}

TEST_CASE("attention: a query that sees no key gives 0, lse -inf and zero gradients, no NaN") {
  const Dims d{2, 2, 1, 40, 45, 16, 5};
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Inputs in = make_inputs_g(d, false, dt, 4);
    AttentionSpec spec = spec_for(MaskKind{.name = "padding", .padding = true}, d, true, Tensor());
    Tensor y = attention(in.q, in.k, in.v, spec);
    core::AttentionForward f = core::attention(in.q.detach(), in.k.detach(), in.v.detach(), spec);
    y.sum().backward();
    // Batch row 1 pads every key.
    CHECK(max_abs_diff(y.select(0, 1), zeros({d.H, d.T, d.D}, dt)) == 0);
    for (double x : f.lse.select(0, 1).to_vector<double>()) CHECK(x == -INFINITY);
    CHECK(max_abs_diff(in.q.grad().select(0, 1), zeros({d.H, d.T, d.D}, dt)) == 0);
    CHECK(max_abs_diff(in.k.grad().select(0, 1), zeros({d.G, d.S, d.D}, dt)) == 0);
    CHECK(max_abs_diff(in.v.grad().select(0, 1), zeros({d.G, d.S, d.D}, dt)) == 0);
    // Row 0 is untouched by it, and nothing is NaN.
    CHECK(all_finite(y));
    CHECK(all_finite(in.q.grad()));
    CHECK(rel_rms(in.v.grad().select(0, 0), zeros({d.G, d.S, d.D}, dt)) > 0.1);
  }
}

namespace {
// Wraps a term and counts how the kernels ask it (atomics: several threads ask at once).
struct CountingTerm : MaskTerm {
  explicit CountingTerm(std::shared_ptr<const MaskTerm> t) : inner(std::move(t)) {}
  Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t qo) const override {
    const Tile t = inner->classify(b, h, i0, i1, j0, j1, qo);
    tiles[int(t)]++;
    return t;
  }
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t qo, uint8_t* out,
            int64_t ld) const override {
    fills++;
    inner->fill(b, h, i0, ni, j0, nj, qo, out, ld);
  }
  std::string describe() const override { return "counting(" + inner->describe() + ")"; }
  std::shared_ptr<const MaskTerm> inner;
  mutable std::atomic<int64_t> tiles[3] = {0, 0, 0};  // by Tile: hidden, visible, partial
  mutable std::atomic<int64_t> fills = 0;
};
}  // namespace

TEST_CASE("attention: hidden tiles are skipped (their keys never read), one fill per partial tile") {
  // Keys 64..127 are padding in every batch row: whole tiles of keys (tiles of 32 or 64 keys
  // start at multiples of their size). Their k and v rows hold NaN: any tile that read them
  // would turn the output NaN (0 * NaN), so a finite output proves they were skipped.
  const int64_t B = 2, H = 2, T = 100, S = 192, D = 24;
  std::vector<int64_t> keep(size_t(B * S), 1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 64; j < 128; ++j) keep[size_t(b * S + j)] = 0;
  Tensor keep_t = from_vector(keep, {B, S});
  auto counting = std::make_shared<CountingTerm>(std::make_shared<KeyPaddingMask>(keep_t.data<int64_t>(), B, S));
  auto mask = std::make_shared<AttentionMask>();
  mask->terms = {counting};
  Generator gen(5);
  Tensor q = randn({B, H, T, D}, gen), k = randn({B, H, S, D}, gen), v = randn({B, H, S, D}, gen);
  Tensor g = randn({B, H, T, D}, gen);
  Tensor k_nan = k.clone(), v_nan = v.clone();
  core::fill_(k_nan.narrow(2, 64, 64), NAN);
  core::fill_(v_nan.narrow(2, 64, 64), NAN);
  for (SimdLevel level : simd_levels()) {
    SimdLevelGuard guard(level);
    CAPTURE(simd_level_name(level));
    for (bool causal : {false, true}) {
      CAPTURE(causal);
      AttentionSpec spec{.causal = causal, .q_offset = S - T, .mask = mask};
      for (auto& t : counting->tiles) t = 0;
      counting->fills = 0;
      core::AttentionForward f = core::attention(q, k_nan, v_nan, spec);
      core::AttentionGrads gf = core::attention_backward(g, q, k_nan, v_nan, f.out, f.lse, spec);
      CHECK(counting->tiles[int(Tile::hidden)] > 0);
      CHECK(counting->tiles[int(Tile::partial)] == 0);
      CHECK(counting->fills == 0);
      CHECK(all_finite(f.out));
      CHECK(all_finite(gf.dq));
      CHECK(all_finite(gf.dk));
      CHECK(all_finite(gf.dv));
      // The same as with finite values in the skipped rows, bit for bit.
      core::AttentionForward f0 = core::attention(q, k, v, spec);
      core::AttentionGrads g0 = core::attention_backward(g, q, k, v, f0.out, f0.lse, spec);
      CHECK(max_abs_diff(f.out, f0.out) == 0);
      CHECK(max_abs_diff(gf.dq, g0.dq) == 0);
      CHECK(max_abs_diff(gf.dk, g0.dk) == 0);
      CHECK(max_abs_diff(gf.dv, g0.dv) == 0);
      CHECK(max_abs_diff(gf.dk.narrow(2, 64, 64), zeros({B, H, 64, D})) == 0);
    }
  }
  // A sliding window with causal: the tiles computed grow linearly in T (a causal mask alone
  // grows as T^2), and each partial tile costs exactly one fill.
  auto computed_tiles = [&](int64_t Tn) {
    auto win = std::make_shared<CountingTerm>(std::make_shared<WindowMask>(32));
    AttentionSpec spec{.causal = true, .mask = std::make_shared<AttentionMask>(AttentionMask{.terms = {win}})};
    Tensor qn = randn({1, 1, Tn, 16}, gen), kn = randn({1, 1, Tn, 16}, gen);
    core::AttentionForward f = core::attention(qn, kn, kn, spec);
    CHECK(win->fills == win->tiles[int(Tile::partial)]);
    return win->tiles[int(Tile::visible)] + win->tiles[int(Tile::partial)];
  };
  const int64_t c256 = computed_tiles(256), c1024 = computed_tiles(1024);
  CAPTURE(c256);
  CAPTURE(c1024);
  CHECK(c1024 <= 4 * c256 + 4);  // x4 in T: x4 tiles (causal alone: x16)
  CHECK(c1024 >= 4 * c256 - 4);
}

TEST_CASE("masked attention: errors name the sizes") {
  Tensor q = zeros({2, 4, 5, 8}, DType::f64), k = zeros({2, 2, 6, 8}, DType::f64);
  CHECK_THROWS_WITH_AS(attention(q, zeros({2, 3, 6, 8}, DType::f64), zeros({2, 3, 6, 8}, DType::f64), AttentionSpec{}),
                       doctest::Contains("G dividing H"), Error);
  CHECK_THROWS_WITH_AS(attention(q, k, k, AttentionSpec{.rel_bias = zeros({4, 9}, DType::f64)}),
                       doctest::Contains("rel_bias must be [H, T + S - 1] = [4, 10]"), Error);
  AttentionSpec wrong_b{
      .mask = std::make_shared<AttentionMask>(AttentionMask{.terms = {core::key_padding_mask(ones({3, 6}))}})};
  CHECK_THROWS_WITH_AS(attention(q, k, k, wrong_b), doctest::Contains("key padding flags are [3, 6]"), Error);
  CHECK_THROWS_WITH_AS(attention_composite(q, k, k, wrong_b), doctest::Contains("key padding flags are [3, 6]"), Error);
  // The kernel checks the table range itself: one entry short.
  std::vector<double> o(2 * 4 * 5 * 8), lse(2 * 4 * 5), qd(o.size()), kd(2 * 2 * 6 * 8), table(4 * 9);
  kernels::AttnSizes n{.B = 2, .H = 4, .T = 5, .S = 6, .D = 8, .scale = 1, .G = 2};
  kernels::RelativeBias<double> rb{.table = table.data(), .sh = 9, .R = 9, .zero = 5};
  kernels::AttnRows<double> orows{o.data(), 160, 40, 8};
  kernels::AttnRows<const double> qrows{qd.data(), 160, 40, 8}, krows{kd.data(), 96, 48, 8};
  CHECK_THROWS_WITH_AS(kernels::attention_forward<double>(orows, lse.data(), qrows, krows, krows, n, &rb),
                       doctest::Contains("does not cover the distances -5 .. 4"), Error);
}

TEST_CASE("attention kernels: causal with q_offset < 0 leaves the first queries empty (0, -inf, no NaN)") {
  // Only the kernels allow it (core::attention asks q_offset >= 0 when causal): queries
  // 0 .. 2 sit before key 0 and see nothing, on the plain path as on the masked one.
  const int64_t B = 1, H = 2, T = 40, S = 37, D = 8;
  Generator gen(6);
  Tensor q = randn({B, H, T, D}, gen, DType::f64), k = randn({B, H, S, D}, gen, DType::f64),
         v = randn({B, H, S, D}, gen, DType::f64), g = randn({B, H, T, D}, gen, DType::f64);
  auto rows = [](const Tensor& t) {
    return kernels::AttnRows<double>{t.data<double>(), t.stride(0), t.stride(1), t.stride(2)};
  };
  auto crows = [](const Tensor& t) {
    return kernels::AttnRows<const double>{t.data<double>(), t.stride(0), t.stride(1), t.stride(2)};
  };
  const kernels::AttentionMask wide{.terms = {std::make_shared<WindowMask>(1000)}};
  for (const kernels::AttentionMask* mask : {static_cast<const kernels::AttentionMask*>(nullptr), &wide}) {
    CAPTURE(mask != nullptr);
    kernels::AttnSizes n{
        .B = B, .H = H, .T = T, .S = S, .D = D, .q_offset = -3, .causal = true, .scale = 0.3, .mask = mask};
    Tensor o = zeros({B, H, T, D}, DType::f64), lse = zeros({B, H, T}, DType::f64);
    Tensor o_r = zeros({B, H, T, D}, DType::f64), lse_r = zeros({B, H, T}, DType::f64);
    kernels::attention_forward<double>(rows(o), lse.data<double>(), crows(q), crows(k), crows(v), n);
    kernels::attention_forward_ref<double>(rows(o_r), lse_r.data<double>(), crows(q), crows(k), crows(v), n);
    CHECK_CLOSE(o, o_r, 1e-12);
    check_lse(lse, lse_r, 1e-12);
    CHECK(max_abs_diff(o.narrow(2, 0, 3), zeros({B, H, 3, D}, DType::f64)) == 0);
    Tensor dq = zeros(q.shape(), DType::f64), dk = zeros(k.shape(), DType::f64), dv = zeros(v.shape(), DType::f64);
    Tensor dq_r = zeros(q.shape(), DType::f64), dk_r = zeros(k.shape(), DType::f64),
           dv_r = zeros(v.shape(), DType::f64);
    kernels::attention_backward<double>(rows(dq), rows(dk), rows(dv), crows(o), lse.data<double>(), crows(g), crows(q),
                                        crows(k), crows(v), n);
    kernels::attention_backward_ref<double>(rows(dq_r), rows(dk_r), rows(dv_r), crows(o_r), lse_r.data<double>(),
                                            crows(g), crows(q), crows(k), crows(v), n);
    CHECK_CLOSE(dq, dq_r, 1e-11);
    CHECK_CLOSE(dk, dk_r, 1e-11);
    CHECK_CLOSE(dv, dv_r, 1e-11);
  }
}

}  // namespace tz::testing
