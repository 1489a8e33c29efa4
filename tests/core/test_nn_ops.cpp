// Fused NN ops: every kernel (AVX2 and scalar paths) vs its plain reference over awkward
// sizes, the tensor layer on non-contiguous inputs, cross-entropy's ignore_index, dropout's
// determinism, and error messages.
#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/cross_entropy.h"
#include "core/kernels/norm.h"
#include "core/kernels/softmax.h"
#include "core/nn_ops.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

const int64_t kC[] = {1, 7, 63, 1000, 4099};

struct SimdMode {  // runs a body with the SIMD kernels on, then off
  template <class F>
  static void both(F f) {
    bool saved = simd_enabled();
    for (bool on : {true, false}) {
      if (on && !cpu_has_avx2_fma()) continue;
      set_simd_enabled(on);
      CAPTURE(on);
      f();
    }
    set_simd_enabled(saved);
  }
};

template <class T>
T* p(const Tensor& t) {
  return t.data<T>();
}

}  // namespace

TEST_CASE("softmax/log_softmax kernels vs reference, forward and backward") {
  Generator gen(11);
  SimdMode::both([&] {
    for (int64_t C : kC) {
      for (DType dt : {DType::f32, DType::f64}) {
        CAPTURE(C);
        int64_t N = 3;
        Tensor x = randn({N, C}, gen, dt, 0, 3), dy = randn({N, C}, gen, dt);
        TZ_DISPATCH_FLOAT(dt, "t", [&]<class T>() {
          double tol = dt == DType::f32 ? 1e-6 : 1e-13;
          Tensor a = empty({N, C}, dt), b = empty({N, C}, dt);
          kernels::softmax_forward<T>(p<T>(a), p<T>(x), N, C);
          kernels::softmax_forward_ref<T>(p<T>(b), p<T>(x), N, C);
          CHECK_CLOSE(a, b, tol);
          Tensor da = full({N, C}, 0.5, dt), db = full({N, C}, 0.5, dt);
          kernels::softmax_backward<T>(p<T>(da), p<T>(dy), p<T>(b), N, C);
          kernels::softmax_backward_ref<T>(p<T>(db), p<T>(dy), p<T>(b), N, C);
          CHECK_CLOSE(da, db, tol * 10);
          kernels::log_softmax_forward<T>(p<T>(a), p<T>(x), N, C);
          kernels::log_softmax_forward_ref<T>(p<T>(b), p<T>(x), N, C);
          CHECK_CLOSE(a, b, tol);
          core::fill_(da, 0.5);
          core::fill_(db, 0.5);
          kernels::log_softmax_backward<T>(p<T>(da), p<T>(dy), p<T>(b), N, C);
          kernels::log_softmax_backward_ref<T>(p<T>(db), p<T>(dy), p<T>(b), N, C);
          CHECK_CLOSE(da, db, tol * 10);
          return 0;
        });
      }
    }
  });
}

TEST_CASE("layer_norm/rms_norm kernels vs reference, with and without weight/bias") {
  Generator gen(12);
  for (int64_t C : kC) {
    for (DType dt : {DType::f32, DType::f64}) {
      for (bool affine : {true, false}) {
        CAPTURE(C);
        CAPTURE(affine);
        int64_t N = 5;
        Tensor x = randn({N, C}, gen, dt, 2.0, 3.0), dy = randn({N, C}, gen, dt);
        Tensor w = randn({C}, gen, dt), bias = randn({C}, gen, dt);
        TZ_DISPATCH_FLOAT(dt, "t", [&]<class T>() {
          double tol = dt == DType::f32 ? 1e-5 : 1e-12;
          const T* wp = affine ? p<T>(w) : nullptr;
          const T* bp = affine ? p<T>(bias) : nullptr;
          Tensor a = empty({N, C}, dt), b = empty({N, C}, dt);
          Tensor ma = empty({N}, dt), mb = empty({N}, dt), ra = empty({N}, dt), rb = empty({N}, dt);
          kernels::layernorm_forward<T>(p<T>(a), p<T>(ma), p<T>(ra), p<T>(x), wp, bp, N, C, 1e-5);
          kernels::layernorm_forward_ref<T>(p<T>(b), p<T>(mb), p<T>(rb), p<T>(x), wp, bp, N, C, 1e-5);
          CHECK_CLOSE(a, b, tol);
          CHECK_CLOSE(ma, mb, tol);
          CHECK_CLOSE(ra, rb, tol);
          Tensor dxa = full({N, C}, 1.0, dt), dxb = full({N, C}, 1.0, dt);
          Tensor dwa = full({C}, 1.0, dt), dwb = full({C}, 1.0, dt);
          Tensor dba = full({C}, 1.0, dt), dbb = full({C}, 1.0, dt);
          kernels::layernorm_backward<T>(p<T>(dxa), affine ? p<T>(dwa) : nullptr, p<T>(dba), p<T>(dy), p<T>(x), wp,
                                         p<T>(ma), p<T>(ra), N, C);
          kernels::layernorm_backward_ref<T>(p<T>(dxb), affine ? p<T>(dwb) : nullptr, p<T>(dbb), p<T>(dy), p<T>(x), wp,
                                             p<T>(ma), p<T>(ra), N, C);
          CHECK_CLOSE(dxa, dxb, tol * 10);
          CHECK_CLOSE(dwa, dwb, tol);
          CHECK_CLOSE(dba, dbb, tol);
          kernels::rmsnorm_forward<T>(p<T>(a), p<T>(ra), p<T>(x), wp, N, C, 1e-6);
          kernels::rmsnorm_forward_ref<T>(p<T>(b), p<T>(rb), p<T>(x), wp, N, C, 1e-6);
          CHECK_CLOSE(a, b, tol);
          CHECK_CLOSE(ra, rb, tol);
          kernels::rmsnorm_backward<T>(p<T>(dxa), affine ? p<T>(dwa) : nullptr, p<T>(dy), p<T>(x), wp, p<T>(ra), N, C);
          kernels::rmsnorm_backward_ref<T>(p<T>(dxb), affine ? p<T>(dwb) : nullptr, p<T>(dy), p<T>(x), wp, p<T>(ra), N,
                                           C);
          CHECK_CLOSE(dxa, dxb, tol * 10);
          CHECK_CLOSE(dwa, dwb, tol);
          return 0;
        });
      }
    }
  }
}

TEST_CASE("cross_entropy kernels vs reference") {
  Generator gen(13);
  SimdMode::both([&] {
    for (int64_t V : kC) {
      for (DType dt : {DType::f32, DType::f64}) {
        CAPTURE(V);
        int64_t N = 6;
        Tensor x = randn({N, V}, gen, dt, 0, 4);
        Tensor t = randint(0, V, {N}, gen);
        t.set({2}, -100);
        TZ_DISPATCH_FLOAT(dt, "t", [&]<class T>() {
          double tol = dt == DType::f32 ? 2e-6 : 1e-13;
          Tensor la = empty({N}, dt), lb = empty({N}, dt), sa = empty({N}, dt), sb = empty({N}, dt);
          kernels::cross_entropy_forward<T>(p<T>(la), p<T>(sa), p<T>(x), p<int64_t>(t), N, V, -100);
          kernels::cross_entropy_forward_ref<T>(p<T>(lb), p<T>(sb), p<T>(x), p<int64_t>(t), N, V, -100);
          CHECK_CLOSE(la, lb, tol);
          CHECK_CLOSE(sa, sb, tol);
          CHECK(la.at({2}) == 0);
          Tensor da = zeros({N, V}, dt), db = zeros({N, V}, dt);
          kernels::cross_entropy_backward<T>(p<T>(da), p<T>(x), p<T>(sa), p<int64_t>(t), 0.25, N, V, -100);
          kernels::cross_entropy_backward_ref<T>(p<T>(db), p<T>(x), p<T>(sa), p<int64_t>(t), 0.25, N, V, -100);
          CHECK_CLOSE(da, db, tol * 10);
          return 0;
        });
      }
    }
  });
}

TEST_CASE("softmax/log_softmax tensor layer: composite in f64, non-contiguous, 3-d, stability") {
  Generator gen(14);
  Tensor x0 = randn({2, 3, 5}, gen, DType::f64, 0, 5);
  for (bool nc : {false, true}) {
    Tensor x = nc ? non_contiguous(x0) : x0;
    Tensor y = core::softmax(x), ly = core::log_softmax(x);
    std::vector<double> v = x0.to_vector<double>(), ref(v.size()), lref(v.size());
    for (size_t r = 0; r < 6; ++r) {
      double s = 0;
      for (size_t c = 0; c < 5; ++c) s += std::exp(v[r * 5 + c]);
      for (size_t c = 0; c < 5; ++c) {
        ref[r * 5 + c] = std::exp(v[r * 5 + c]) / s;
        lref[r * 5 + c] = v[r * 5 + c] - std::log(s);
      }
    }
    CHECK_CLOSE(y, from_vector(ref, {2, 3, 5}), 1e-13);
    CHECK_CLOSE(ly, from_vector(lref, {2, 3, 5}), 1e-13);
  }
  // Max-subtraction: huge logits neither overflow nor give NaN.
  Tensor big = tensor({1000, 1001, 1002}, DType::f32);
  CHECK(all_finite(core::softmax(big)));
  CHECK(std::abs(core::log_softmax(big).at({2}) - (-std::log(1 + std::exp(-1.0) + std::exp(-2.0)))) < 1e-5);
  // A -inf entry gets probability 0 (masked attention).
  Tensor masked = tensor({0, -INFINITY, 0}, DType::f32);
  CHECK(core::softmax(masked).to_vector<double>() == std::vector<double>{0.5, 0, 0.5});
  // Empty last dim and 0 rows are fine.
  CHECK(core::softmax(zeros({0, 4})).shape() == Shape{0, 4});
  CHECK(core::softmax(zeros({3, 0})).shape() == Shape{3, 0});
  CHECK_THROWS_WITH_AS(core::softmax(arange(3)), doctest::Contains("softmax: expected a floating"), tz::Error);
}

TEST_CASE("layer_norm/rms_norm tensor layer: non-contiguous input, optional params, errors") {
  Generator gen(15);
  Tensor x0 = randn({4, 6}, gen, DType::f64, 1.0, 2.0);
  Tensor w = randn({6}, gen, DType::f64), b = randn({6}, gen, DType::f64);
  auto r0 = core::layer_norm(x0, w, b, 1e-5);
  auto r1 = core::layer_norm(non_contiguous(x0), w, b, 1e-5);
  CHECK_CLOSE(r1.out, r0.out, 1e-14);
  CHECK(r0.mean.shape() == Shape{4});
  // Each row of the plain normalisation has mean 0 and biased variance ~1.
  auto plain = core::layer_norm(x0, Tensor(), Tensor(), 0.0);
  std::vector<double> v = plain.out.to_vector<double>();
  for (int r = 0; r < 4; ++r) {
    double s = 0, q = 0;
    for (int c = 0; c < 6; ++c) s += v[size_t(r * 6 + c)], q += v[size_t(r * 6 + c)] * v[size_t(r * 6 + c)];
    CHECK(std::abs(s / 6) < 1e-12);
    CHECK(std::abs(q / 6 - 1) < 1e-12);
  }
  auto q0 = core::rms_norm(x0, Tensor(), 0.0);
  std::vector<double> u = q0.out.to_vector<double>();
  for (int r = 0; r < 4; ++r) {
    double q = 0;
    for (int c = 0; c < 6; ++c) q += u[size_t(r * 6 + c)] * u[size_t(r * 6 + c)];
    CHECK(std::abs(q / 6 - 1) < 1e-12);
  }
  CHECK_CLOSE(core::rms_norm(non_contiguous(x0), w, 1e-6).out, core::rms_norm(x0, w, 1e-6).out, 1e-14);
  CHECK_THROWS_WITH_AS(core::layer_norm(x0, zeros({5}, DType::f64), b, 1e-5),
                       doctest::Contains("layer_norm: weight of shape [5]"), tz::Error);
  CHECK_THROWS_WITH_AS(core::layer_norm(x0, w, zeros({6}), 1e-5),
                       doctest::Contains("bias dtype f32 does not match the input dtype f64"), tz::Error);
  CHECK_THROWS_WITH_AS(core::rms_norm(x0, zeros({4}, DType::f64), 1e-6), doctest::Contains("rms_norm: weight"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(core::rms_norm(scalar_tensor(1.0), Tensor(), 1e-6),
                       doctest::Contains("rms_norm: expected at least 1 dim"), tz::Error);
}

TEST_CASE("cross_entropy tensor layer: value, [B, T, V] logits, ignore_index, errors") {
  Generator gen(16);
  Tensor x = randn({2, 3, 5}, gen, DType::f64);
  Tensor t = from_vector(std::vector<int64_t>{0, 4, -100, 2, 1, 3}, {2, 3});
  auto r = core::cross_entropy(x, t, -100);
  CHECK(r.count == 5);
  CHECK(r.loss.dim() == 0);
  // Reference: mean over counted rows of lse - x[target].
  std::vector<double> v = x.to_vector<double>();
  std::vector<int64_t> tv = t.to_vector<int64_t>();
  double s = 0;
  for (size_t n = 0; n < 6; ++n) {
    if (tv[n] == -100) continue;
    double e = 0;
    for (size_t c = 0; c < 5; ++c) e += std::exp(v[n * 5 + c]);
    s += std::log(e) - v[n * 5 + size_t(tv[n])];
  }
  CHECK(std::abs(r.loss.item() - s / 5) < 1e-12);
  // Non-contiguous logits give the same loss; a custom ignore_index works.
  CHECK(std::abs(core::cross_entropy(non_contiguous(x), t, -100).loss.item() - s / 5) < 1e-12);
  Tensor t2 = from_vector(std::vector<int64_t>{0, 4, 4, 2, 1, 3}, {2, 3});
  CHECK(core::cross_entropy(x, t2, 4).count == 4);
  // All ignored: loss 0, gradient 0.
  Tensor all = full({2, 3}, -100, DType::i64);
  auto z = core::cross_entropy(x, all, -100);
  CHECK(z.count == 0);
  CHECK(z.loss.item() == 0);
  Tensor dz = core::cross_entropy_backward(scalar_tensor(1.0, DType::f64), x, all, z.lse, -100, 0);
  CHECK(max_abs_diff(dz, zeros({2, 3, 5}, DType::f64)) == 0);
  // Errors.
  Tensor bad = from_vector(std::vector<int64_t>{0, 5, 1, 2, 1, 3}, {2, 3});
  CHECK_THROWS_WITH_AS(core::cross_entropy(x, bad, -100),
                       doctest::Contains("target 5 at position 1 is out of range for V = 5"), tz::Error);
  Tensor neg = from_vector(std::vector<int64_t>{0, -1, 1, 2, 1, 3}, {2, 3});
  CHECK_THROWS_WITH_AS(core::cross_entropy(x, neg, -100), doctest::Contains("target -1"), tz::Error);
  CHECK_THROWS_WITH_AS(core::cross_entropy(x, zeros({2, 3}), -100), doctest::Contains("targets must be i64"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(core::cross_entropy(x, zeros({6}, DType::i64), -100),
                       doctest::Contains("do not match logits of shape [2, 3, 5]"), tz::Error);
  CHECK_THROWS_WITH_AS(core::cross_entropy(arange(5).view({1, 5}), zeros({1}, DType::i64), -100),
                       doctest::Contains("cross_entropy: expected a floating"), tz::Error);
}

TEST_CASE("dropout: deterministic for a seed and any thread count, scale, identity, errors") {
  Tensor x = ones({1000, 37});
  int saved = get_num_threads();
  set_num_threads(1);
  Generator g1(42);
  auto a = core::dropout(x, 0.3, true, g1);
  set_num_threads(2);
  Generator g2(42);
  auto b = core::dropout(x, 0.3, true, g2);
  set_num_threads(saved);
  CHECK(max_abs_diff(a.out, b.out) == 0);
  CHECK(g1.counter() == 37000);
  std::vector<double> v = a.out.to_vector<double>();
  int64_t zeros_n = 0;
  for (double e : v) {
    CHECK((e == 0 || std::abs(e - 1 / 0.7) < 1e-6));
    zeros_n += e == 0;
  }
  CHECK(std::abs(double(zeros_n) / 37000 - 0.3) < 0.02);
  // The next call continues the stream: a different mask.
  auto c = core::dropout(x, 0.3, true, g1);
  CHECK(max_abs_diff(a.out, c.out) > 0);
  // Backward applies the same mask and scale.
  Tensor d = core::dropout_backward(x, 0.3, a.seed, a.first);
  CHECK(max_abs_diff(d, a.out) == 0);
  // Identity, non-contiguous input.
  Generator g3(1);
  CHECK(core::dropout(x, 0.0, true, g3).out.shares_storage(x));
  CHECK(core::dropout(x, 0.5, false, g3).out.shares_storage(x));
  CHECK(g3.counter() == 0);
  Tensor nc = non_contiguous(randn({5, 8}, g3, DType::f64));
  Generator g4(9), g5(9);
  CHECK(max_abs_diff(core::dropout(nc, 0.5, true, g4).out,
                     core::dropout(nc.contiguous().detach(), 0.5, true, g5).out) == 0);
  CHECK_THROWS_WITH_AS(core::dropout(x, 1.0, true, g3), doctest::Contains("dropout: p must be in [0, 1), got 1"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(core::dropout(x, -0.1, true, g3), doctest::Contains("dropout: p"), tz::Error);
}

}  // namespace tz::testing
