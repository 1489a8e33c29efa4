// Fused attention (core/kernels/attention.h): the tiled online-softmax kernels against the
// naive materialising references, and the autograd op against the composite
// nn::scaled_dot_product_attention_ref (matmul, scale, masked_fill, softmax, matmul) -
// forward outputs and q/k/v gradients, over awkward shapes (T around the 64-row tile, D not
// a multiple of 8, S > T with a query offset), non-contiguous inputs, causal or not, f32
// with SIMD on and off, and f64.
#include "autograd/ops.h"
#include "core/attention.h"
#include "nn/attention/attention.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

struct SimdGuard {
  SimdLevel prev = simd_level();
  explicit SimdGuard(SimdLevel level) { set_simd_level(level); }
  ~SimdGuard() { set_simd_level(prev); }
};
// The SIMD levels this CPU runs, widest first, then off (the portable loops).
std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> ls;
  if (cpu_has_avx512()) ls.push_back(SimdLevel::avx512);
  if (cpu_has_avx2_fma()) ls.push_back(SimdLevel::avx2);
  ls.push_back(SimdLevel::off);
  return ls;
}

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
#define CHECK_NEAR_T(a, b, tol)                                                        \
  CHECK_MESSAGE((rel_rms((a), (b)) <= (tol) || max_abs_diff((a), (b)) <= (tol)),       \
                "rel rms error ", rel_rms((a), (b)), ", max abs error ", max_abs_diff((a), (b)))

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
    for (SimdLevel level : levels()) {
      if (dt == DType::f64 && level != SimdLevel::off) continue;  // f64 has only the portable loops
      SimdGuard guard(level);
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
          core::AttentionGrads gr =
              core::attention_backward(g, q, k, v, r.out, r.lse, c.causal, c.q_offset, 0, true);
          CHECK_NEAR_T(gf.dq, gr.dq, tol);
          CHECK_NEAR_T(gf.dk, gr.dk, tol);
          CHECK_NEAR_T(gf.dv, gr.dv, tol);
        }
    }
}

TEST_CASE("attention op vs the composite scaled_dot_product_attention_ref: outputs and gradients") {
  for (DType dt : {DType::f32, DType::f64})
    for (SimdLevel level : levels()) {
      if (dt == DType::f64 && level != SimdLevel::off) continue;  // f64 has only the portable loops
      SimdGuard guard(level);
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

TEST_CASE("attention: errors name the op and the shapes; empty inputs") {
  Tensor q = zeros({1, 2, 4, 8}), k = zeros({1, 2, 5, 8});
  CHECK_THROWS_WITH_AS(attention(q, k, zeros({1, 2, 5, 7}), true), doctest::Contains("attention: shape mismatch"), Error);
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

}  // namespace tz::testing
