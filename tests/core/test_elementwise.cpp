// Elementwise ops: every kernel vs its scalar reference (SIMD on and off, awkward sizes),
// the measured error of the vectorised math (dense sweep vs std:: in double), special values
// (inf, NaN, overflow), and the tensor layer: broadcasting, non-contiguous and expanded
// inputs, i64, where/masked_fill/tril/triu, thread-count independence and error messages.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/elementwise.h"
#include "core/kernels/elementwise.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

using kernels::BinaryOp;
using kernels::UnaryOp;

const int64_t kSizes[] = {0, 1, 7, 8, 9, 63, 1000, 4099};
const UnaryOp kUnary[] = {UnaryOp::neg,   UnaryOp::exp,     UnaryOp::log,         UnaryOp::sqrt,
                          UnaryOp::rsqrt, UnaryOp::abs,     UnaryOp::sin,         UnaryOp::cos,
                          UnaryOp::tanh,  UnaryOp::sigmoid, UnaryOp::log_sigmoid, UnaryOp::softplus,
                          UnaryOp::relu,  UnaryOp::gelu,    UnaryOp::gelu_tanh,   UnaryOp::silu};
const BinaryOp kBinary[] = {BinaryOp::add,     BinaryOp::sub,     BinaryOp::mul, BinaryOp::div, BinaryOp::pow,
                            BinaryOp::maximum, BinaryOp::minimum, BinaryOp::eq,  BinaryOp::lt,  BinaryOp::ge};

bool positive_domain(UnaryOp op) { return op == UnaryOp::log || op == UnaryOp::sqrt || op == UnaryOp::rsqrt; }

// Deterministic test inputs in [lo, hi].
std::vector<float> inputs(int64_t n, float lo, float hi, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = float(lo + (hi - lo) * gen.uniform());
  return v;
}

// |a - b| <= atol + rtol |b|, and NaN only where the reference is NaN.
void check_near(const std::vector<float>& a, const std::vector<float>& b, double atol, double rtol) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(b[i])) {
      if (!std::isnan(a[i])) CHECK_MESSAGE(false, "i=", i, ": ", a[i], " vs NaN");
      continue;
    }
    if (a[i] == b[i]) continue;
    if (!(std::abs(double(a[i]) - b[i]) <= atol + rtol * std::abs(double(b[i]))))
      CHECK_MESSAGE(false, "i=", i, ": ", a[i], " vs ", b[i]);  // one report per bad element
  }
}

}  // namespace

TEST_CASE("unary kernels match their references (every SIMD level and off)") {
  for (SimdLevel level : simd_levels()) {
    SimdLevelGuard guard(level);
    const std::string simd = simd_level_name(level);
    for (UnaryOp op : kUnary) {
      for (int64_t n : kSizes) {
        CAPTURE(kernels::unary_name(op));
        CAPTURE(n);
        CAPTURE(simd);
        auto x = positive_domain(op) ? inputs(n, 1e-3f, 20.f, 7) : inputs(n, -9.f, 9.f, 7);
        std::vector<float> y(static_cast<size_t>(n)), r(static_cast<size_t>(n));
        kernels::unary(op, y.data(), x.data(), n);
        kernels::unary_ref(op, r.data(), x.data(), n);
        check_near(y, r, 1e-6, 1e-6);
        // derivative
        std::vector<float> g = inputs(n, -2.f, 2.f, 8), dx(static_cast<size_t>(n)), dr(static_cast<size_t>(n));
        kernels::unary_backward(op, dx.data(), r.data(), x.data(), g.data(), n);
        kernels::unary_backward_ref(op, dr.data(), r.data(), x.data(), g.data(), n);
        check_near(dx, dr, 2e-6, 2e-6);
      }
    }
  }
}

TEST_CASE("binary kernels match their references: runs, scalar b, scalar a, f32 and i64") {
  for (SimdLevel level : simd_levels()) {
    SimdLevelGuard guard(level);
    const std::string simd = simd_level_name(level);
    for (BinaryOp op : kBinary) {
      for (int64_t n : kSizes) {
        CAPTURE(kernels::binary_name(op));
        CAPTURE(n);
        CAPTURE(simd);
        bool pos = op == BinaryOp::pow;
        auto a = inputs(n, pos ? 0.1f : -4.f, 4.f, 1), b = inputs(n, pos ? -2.f : 0.5f, 3.f, 2);
        if (n > 3) b[2] = a[2];  // a tie for maximum/minimum/eq
        std::vector<float> o(static_cast<size_t>(n)), r(static_cast<size_t>(n));
        kernels::binary(op, o.data(), a.data(), b.data(), n);
        kernels::binary_ref(op, r.data(), a.data(), b.data(), n);
        check_near(o, r, 0, 1e-6);
        kernels::binary_scalar_b(op, o.data(), a.data(), 2.0f, n);
        kernels::binary_scalar_b_ref(op, r.data(), a.data(), 2.0f, n);
        check_near(o, r, 0, 1e-6);
        kernels::binary_scalar_a(op, o.data(), 1.5f, b.data(), n);
        kernels::binary_scalar_a_ref(op, r.data(), 1.5f, b.data(), n);
        check_near(o, r, 0, 1e-6);
        if (op != BinaryOp::div && op != BinaryOp::pow) {
          std::vector<int64_t> ia(static_cast<size_t>(n)), ib(static_cast<size_t>(n)), io(static_cast<size_t>(n));
          for (int64_t i = 0; i < n; ++i) ia[size_t(i)] = i - 5, ib[size_t(i)] = 3 - 2 * i;
          kernels::binary(op, io.data(), ia.data(), ib.data(), n);
          std::vector<int64_t> ir(static_cast<size_t>(n));
          kernels::binary_ref(op, ir.data(), ia.data(), ib.data(), n);
          CHECK(io == ir);
          if (n > 0) CHECK(io[0] == kernels::binary_one(op, ia[0], ib[0]));
        }
      }
      // clamp
      for (int64_t n : kSizes) {
        auto x = inputs(n, -3.f, 3.f, 3);
        std::vector<float> o(static_cast<size_t>(n)), r(static_cast<size_t>(n));
        kernels::clamp(o.data(), x.data(), -1.f, 0.5f, n);
        kernels::clamp_ref(r.data(), x.data(), -1.f, 0.5f, n);
        check_near(o, r, 0, 0);
      }
    }
  }
}

namespace {
// The measured approximation errors quoted in core/kernels/vecmath.h come from this sweep.
void vecmath_sweep() {
  struct Sweep {
    UnaryOp op;
    double lo, hi, max_rel, max_abs;  // pass if every point meets one of the two bounds
  };
  const Sweep sweeps[] = {
      {UnaryOp::exp, -87, 88.7, 1.5e-7, 0},  {UnaryOp::log, 1e-6, 10, 2.5e-7, 0},
      {UnaryOp::log, 1, 3e38, 1e-7, 0},      {UnaryOp::tanh, -10, 10, 3e-7, 0},
      {UnaryOp::tanh, -0.01, 0.01, 3e-7, 0}, {UnaryOp::sigmoid, -87, 30, 2.5e-7, 0},
      {UnaryOp::softplus, -80, 80, 3e-7, 0}, {UnaryOp::log_sigmoid, -80, 80, 3e-7, 0},
      {UnaryOp::gelu, -12, 12, 6e-7, 0},     {UnaryOp::gelu_tanh, -12, 12, 1e-6, 1e-6},
      {UnaryOp::silu, -80, 80, 3e-7, 0},
  };
  const int64_t n = 400001;
  for (const Sweep& s : sweeps) {
    std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(s.lo + (s.hi - s.lo) * double(i) / double(n - 1));
    kernels::unary(s.op, y.data(), x.data(), n);
    double max_rel = 0, max_abs = 0;
    for (int64_t i = 0; i < n; ++i) {
      double xd = x[size_t(i)], r;
      kernels::unary_ref<double>(s.op, &r, &xd, 1);
      double e = std::abs(double(y[size_t(i)]) - r);
      if (!std::isfinite(e)) REQUIRE_MESSAGE(false, std::string(kernels::unary_name(s.op)), " at ", xd);
      max_abs = std::max(max_abs, e);
      if (std::abs(r) > 1e-30) {  // relative error on normal-range results
        double rel = e / std::abs(r);
        if (rel > s.max_rel)
          CHECK_MESSAGE(e <= s.max_abs, std::string(kernels::unary_name(s.op)), " at ", xd, ": rel ", rel);
        max_rel = std::max(max_rel, rel);
      }
    }
    MESSAGE(std::string(kernels::unary_name(s.op)), " over [", s.lo, ", ", s.hi, "]: max rel err ", max_rel,
            ", max abs err ", max_abs);
  }
}
}  // namespace

TEST_CASE("vecmath approximation error sweep (f32 SIMD vs std:: in double)") {
  for (SimdLevel level : simd_levels()) {
    if (level == SimdLevel::off) continue;
    SimdLevelGuard guard(level);
    const std::string simd = simd_level_name(level);
    CAPTURE(simd);
    vecmath_sweep();
  }
}

// The math's steps are all correctly rounded, so 16 lanes must give 8 lanes' bits: over
// every float class (random bit patterns: NaNs, infinities, subnormals, each exponent) and
// run lengths whose tails differ between the two widths.
TEST_CASE("the AVX-512 elementwise kernels give the AVX2 kernels' bits") {
  if (!cpu_has_avx512()) {
    MESSAGE("skipped: this CPU has no AVX-512");
    return;
  }
  const int64_t n = 40013;  // 2500 x 16 + 13: AVX2 runs 8 + a 5-lane tail at the end
  std::vector<float> x(static_cast<size_t>(n)), g(x), y8(x), y16(x), r(x);
  Generator gen(11);
  for (int64_t i = 0; i < n; ++i) {
    const auto bits = uint32_t(gen.bits(uint64_t(i)));
    std::memcpy(&x[size_t(i)], &bits, 4);
    if (i % 2) x[size_t(i)] = float(40.0 * (gen.uniform() - 0.5));  // half in the working range
    g[size_t(i)] = float(gen.uniform() * 4 - 2);
  }
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b, const char* what) {
    int64_t bad = 0;
    for (size_t i = 0; i < a.size(); ++i) bad += std::memcmp(&a[i], &b[i], 4) != 0;
    CHECK_MESSAGE(bad == 0, what, ": ", bad, " elements differ");
  };
  for (UnaryOp op : kUnary) {
    CAPTURE(kernels::unary_name(op));
    const bool has8 = kernels::avx2::unary(op, y8.data(), x.data(), n);
    REQUIRE(has8 == kernels::avx512::unary(op, y16.data(), x.data(), n));
    if (!has8) continue;
    same_bits(y8, y16, "forward");
    kernels::avx2::unary_backward(op, y8.data(), r.data(), x.data(), g.data(), n);
    kernels::avx512::unary_backward(op, y16.data(), r.data(), x.data(), g.data(), n);
    same_bits(y8, y16, "backward");
  }
  for (BinaryOp op : kBinary) {
    CAPTURE(kernels::binary_name(op));
    const bool has8 = kernels::avx2::binary(op, y8.data(), x.data(), g.data(), n);
    REQUIRE(has8 == kernels::avx512::binary(op, y16.data(), x.data(), g.data(), n));
    if (!has8) continue;
    same_bits(y8, y16, "a op b");
    kernels::avx2::binary_scalar_b(op, y8.data(), x.data(), 1.5f, n);
    kernels::avx512::binary_scalar_b(op, y16.data(), x.data(), 1.5f, n);
    same_bits(y8, y16, "a op 1.5");
    kernels::avx2::binary_scalar_a(op, y8.data(), -0.5f, x.data(), n);
    kernels::avx512::binary_scalar_a(op, y16.data(), -0.5f, x.data(), n);
    same_bits(y8, y16, "-0.5 op b");
  }
  kernels::avx2::clamp(y8.data(), x.data(), -1.f, 2.f, n);
  kernels::avx512::clamp(y16.data(), x.data(), -1.f, 2.f, n);
  same_bits(y8, y16, "clamp");
}

TEST_CASE("special values: overflow, underflow, log domain, NaN propagation") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  for (SimdLevel level : simd_levels()) {
    SimdLevelGuard guard(level);
    const std::string simd = simd_level_name(level);
    CAPTURE(simd);
    auto run = [](UnaryOp op, std::vector<float> x) {
      std::vector<float> y(x.size());
      kernels::unary(op, y.data(), x.data(), int64_t(x.size()));
      return y;
    };
    auto e = run(UnaryOp::exp, {100.f, -120.f, inf, -inf, nan, 0.f});
    CHECK(e[0] == inf);
    CHECK(e[1] == 0.f);
    CHECK(e[2] == inf);
    CHECK(e[3] == 0.f);
    CHECK(std::isnan(e[4]));
    CHECK(e[5] == 1.f);
    auto l = run(UnaryOp::log, {0.f, -1.f, inf, nan, 1.f, 1e-40f});
    CHECK(l[0] == -inf);
    CHECK(std::isnan(l[1]));
    CHECK(l[2] == inf);
    CHECK(std::isnan(l[3]));
    CHECK(l[4] == 0.f);
    CHECK(l[5] == doctest::Approx(std::log(1e-40)).epsilon(1e-5));
    auto t = run(UnaryOp::tanh, {50.f, -50.f, inf, -inf, nan});
    CHECK(t[0] == 1.f);
    CHECK(t[1] == -1.f);
    CHECK(t[2] == 1.f);
    CHECK(t[3] == -1.f);
    CHECK(std::isnan(t[4]));
    auto sg = run(UnaryOp::sigmoid, {200.f, -200.f, nan});
    CHECK(sg[0] == 1.f);
    CHECK(sg[1] == 0.f);
    CHECK(std::isnan(sg[2]));
    auto sp = run(UnaryOp::softplus, {200.f, -200.f, 1e30f});
    CHECK(sp[0] == 200.f);
    CHECK(sp[1] >= 0.f);
    CHECK(sp[1] < 1e-30f);
    CHECK(sp[2] == 1e30f);
    auto ls = run(UnaryOp::log_sigmoid, {-200.f, 200.f, -1e30f});
    CHECK(ls[0] == -200.f);
    CHECK(ls[1] <= 0.f);
    CHECK(ls[1] > -1e-30f);
    CHECK(ls[2] == -1e30f);
    auto g = run(UnaryOp::gelu, {-30.f, 30.f, nan});
    CHECK(g[0] == 0.f);
    CHECK(g[1] == 30.f);
    CHECK(std::isnan(g[2]));
    auto r = run(UnaryOp::relu, {nan, -1.f, 2.f});
    CHECK(std::isnan(r[0]));
    CHECK(r[1] == 0.f);
    CHECK(r[2] == 2.f);
    // maximum/minimum propagate NaN from either side; ties give a.
    std::vector<float> a = {nan, 1.f, 2.f, 0.f}, b = {1.f, nan, 2.f, -0.f}, o(4);
    kernels::binary(BinaryOp::maximum, o.data(), a.data(), b.data(), 4);
    CHECK(std::isnan(o[0]));
    CHECK(std::isnan(o[1]));
    CHECK(o[2] == 2.f);
    CHECK(!std::signbit(o[3]));
    kernels::binary(BinaryOp::minimum, o.data(), a.data(), b.data(), 4);
    CHECK(std::isnan(o[0]));
    CHECK(std::isnan(o[1]));
    std::vector<float> c = {nan, -5.f, 5.f};
    kernels::clamp(o.data(), c.data(), -1.f, 1.f, 3);
    CHECK(std::isnan(o[0]));
    CHECK(o[1] == -1.f);
    CHECK(o[2] == 1.f);
  }
}

// ---- tensor level --------------------------------------------------------------------------
namespace {
// Naive broadcast binary op in f64, by index arithmetic.
Tensor naive_binary(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  Shape s = broadcast_shapes(a.shape(), b.shape(), "naive");
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  int64_t n = shape_numel(s);
  std::vector<double> out(static_cast<size_t>(n));
  auto index_of = [&](const Tensor& t, int64_t flat) {
    int64_t idx = 0, stride = 1;
    for (int64_t d = int64_t(s.size()) - 1, td = t.dim() - 1; d >= 0; --d, --td) {
      int64_t i = flat % s[size_t(d)];
      flat /= s[size_t(d)];
      if (td >= 0) {
        if (t.shape()[size_t(td)] != 1) idx += i * stride;
        stride *= t.shape()[size_t(td)];
      }
    }
    return idx;
  };
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = f(va[size_t(index_of(a, i))], vb[size_t(index_of(b, i))]);
  return from_vector(out, s);
}
Tensor rnd(const Shape& s, uint64_t seed, DType dt = DType::f32) {
  Generator gen(seed);
  return randn(s, gen, dt);
}
}  // namespace

TEST_CASE("binary broadcasting, non-contiguous and expanded inputs") {
  for (SimdLevel level : simd_levels()) {
    SimdLevelGuard guard(level);
    const std::string simd = simd_level_name(level);
    CAPTURE(simd);
    Tensor a = rnd({3, 1, 5}, 1), b = rnd({4, 5}, 2);
    CHECK_CLOSE(core::add(a, b), naive_binary(a, b, [](double x, double y) { return x + y; }), 1e-7);
    CHECK_CLOSE(core::mul(b, a), naive_binary(b, a, [](double x, double y) { return x * y; }), 1e-7);
    Tensor s = scalar_tensor(2.5), m = rnd({2, 3}, 3);
    CHECK(core::add(s, m).shape() == Shape{2, 3});
    CHECK_CLOSE(core::sub(s, m), naive_binary(s, m, [](double x, double y) { return x - y; }), 1e-7);
    // non-contiguous (transposed, strided) operands
    Tensor big = rnd({37, 41}, 4), nc = non_contiguous(big), other = rnd({37, 41}, 5);
    CHECK_FALSE(nc.is_contiguous());
    CHECK_CLOSE(core::div(nc, other), naive_binary(big, other, [](double x, double y) { return x / y; }), 1e-6);
    CHECK_CLOSE(core::maximum(other, nc), naive_binary(other, big, [](double x, double y) { return std::max(x, y); }),
                0);
    Tensor v1 = non_contiguous(rnd({1000}, 6)), v2 = rnd({1000}, 7);
    CHECK_CLOSE(core::sub(v1, v2), naive_binary(v1.contiguous(), v2, [](double x, double y) { return x - y; }), 1e-7);
    // expanded (stride 0) inputs
    Tensor row = rnd({1, 9}, 8).expand({7, 9}), col = rnd({7, 1}, 9).expand({7, 9});
    CHECK(row.strides()[0] == 0);
    CHECK_CLOSE(core::mul(row, col),
                naive_binary(row.contiguous(), col.contiguous(), [](double x, double y) { return x * y; }), 1e-7);
    // f64 path
    Tensor a64 = rnd({5, 1}, 10, DType::f64), b64 = rnd({3}, 11, DType::f64);
    CHECK_CLOSE(core::binary(BinaryOp::pow, core::unary(UnaryOp::abs, a64), b64),
                naive_binary(core::unary(UnaryOp::abs, a64), b64, [](double x, double y) { return std::pow(x, y); }),
                1e-14);
    // empty
    CHECK(core::add(zeros({0, 3}), zeros({1, 3})).shape() == Shape{0, 3});
  }
}

TEST_CASE("add_ accumulates in place into any view, with a broadcast source") {
  for (SimdLevel level : simd_levels()) {
    SimdLevelGuard guard(level);
    const std::string simd = simd_level_name(level);
    CAPTURE(simd);
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor base = rnd({4, 3, 37}, 5, dt), g = rnd({4, 37}, 6, dt), row = rnd({37}, 7, dt);
      Tensor expect = core::clone(base);
      Tensor view = base.select(1, 1);  // rows 3 x 37 apart: a strided destination
      core::add_(view, g);
      core::add_(base.select(1, 2).transpose(0, 1), g.transpose(0, 1));  // transposed on both sides
      core::add_(base.select(1, 0), row);                                // broadcast over the rows
      Tensor e1 = expect.select(1, 1), e2 = expect.select(1, 2), e0 = expect.select(1, 0);
      core::copy_(e1, core::add(e1, g));
      core::copy_(e2, core::add(e2, g));
      core::copy_(e0, core::add(e0, row));
      CHECK_CLOSE(base, expect, 0.0);  // the same additions, so the same bits
    }
  }
  Tensor a = rnd({2, 3}, 1);
  CHECK_THROWS_WITH_AS(core::add_(a, rnd({3, 2}, 2)), doctest::Contains("cannot be broadcast"), Error);
  CHECK_THROWS_WITH_AS(core::add_(a, rnd({4, 2, 3}, 2)), doctest::Contains("does not broadcast to destination"), Error);
  CHECK_THROWS_WITH_AS(core::add_(a, rnd({2, 3}, 2, DType::f64)), doctest::Contains("dtype"), Error);
}

TEST_CASE("unary and scalar ops at the tensor level over any strides") {
  Tensor x = rnd({33, 17}, 12), nc = non_contiguous(x);
  for (UnaryOp op : kUnary) {
    CAPTURE(kernels::unary_name(op));
    Tensor in = positive_domain(op) ? core::unary(UnaryOp::abs, x) : x;
    Tensor in_nc = positive_domain(op) ? core::unary(UnaryOp::abs, nc) : nc;
    CHECK_CLOSE(core::unary(op, in_nc), core::unary(op, in), 0);
    // backward with an expanded gradient
    Tensor y = core::unary(op, in);
    Tensor g = ones({1, 17}).expand({33, 17});
    Tensor dx = core::unary_backward(op, y, in_nc, g);
    Tensor dref = core::unary_backward(op, y, in, ones({33, 17}));
    CHECK_CLOSE(dx, dref, 0);
  }
  CHECK_CLOSE(core::binary_scalar(BinaryOp::add, nc, 2.0, "add_scalar"),
              naive_binary(x, scalar_tensor(2.0), [](double a, double b) { return a + b; }), 1e-7);
  CHECK_CLOSE(core::binary_scalar(BinaryOp::pow, core::unary(UnaryOp::abs, nc), 2.0, "pow_scalar"), core::mul(x, x),
              1e-7);
  CHECK_CLOSE(core::clamp(nc, -0.5, 0.25), core::minimum(core::maximum(x, scalar_tensor(-0.5f)), scalar_tensor(0.25f)),
              0);
}

TEST_CASE("i64 arithmetic for index computations") {
  Tensor a = arange(6).reshape({2, 3}), b = from_vector(std::vector<int64_t>{10, 20, 30});
  Tensor s = core::add(a, b);
  CHECK(s.dtype() == DType::i64);
  CHECK(s.to_vector<int64_t>() == std::vector<int64_t>{10, 21, 32, 13, 24, 35});
  CHECK(core::mul(a, b).to_vector<int64_t>() == std::vector<int64_t>{0, 20, 60, 30, 80, 150});
  CHECK(core::sub(b, a).to_vector<int64_t>() == std::vector<int64_t>{10, 19, 28, 7, 16, 25});
  CHECK(core::maximum(a, scalar_tensor(2, DType::i64)).to_vector<int64_t>() == std::vector<int64_t>{2, 2, 2, 3, 4, 5});
  CHECK(core::minimum(a, scalar_tensor(2, DType::i64)).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 2, 2, 2});
  CHECK(core::binary_scalar(BinaryOp::mul, a, 3, "mul_scalar").to_vector<int64_t>() ==
        std::vector<int64_t>{0, 3, 6, 9, 12, 15});
  CHECK(core::unary(UnaryOp::neg, a).to_vector<int64_t>() == std::vector<int64_t>{0, -1, -2, -3, -4, -5});
  Tensor big = from_vector(std::vector<int64_t>{int64_t(1) << 60});
  CHECK(core::add(big, big).to_vector<int64_t>()[0] == int64_t(1) << 61);  // no trip through double
  CHECK_THROWS_WITH_AS(core::div(a, a), "div: expected a floating dtype (f32 or f64), got i64", Error);
  CHECK_THROWS_WITH_AS(core::unary(UnaryOp::exp, a), "exp: expected a floating dtype (f32 or f64), got i64", Error);
  CHECK_THROWS_AS(core::binary_scalar(BinaryOp::add, a, 0.5, "add_scalar"), Error);
}

TEST_CASE("where, masked_fill, tril, triu") {
  Tensor cond = from_vector(std::vector<int64_t>{1, 0, 1}, {3});
  Tensor a = rnd({2, 1}, 13), b = rnd({2, 3}, 14);
  Tensor w = core::where(cond, a, b);
  CHECK(w.shape() == Shape{2, 3});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) CHECK(w.at({i, j}) == (j != 1 ? a.at({i, 0}) : b.at({i, j})));
  Tensor wi = core::where(core::binary(BinaryOp::gt, b, scalar_tensor(0.f)), arange(3), scalar_tensor(-1, DType::i64));
  CHECK(wi.dtype() == DType::i64);
  CHECK_THROWS_WITH_AS(core::where(cond, a, b.to(DType::f64)), "where: dtype mismatch, f32 vs f64", Error);

  Tensor x = rnd({2, 3, 4}, 15), nc = non_contiguous(x);
  Tensor mask = from_vector(std::vector<double>{0, 1, 0, 1}, {4});
  Tensor mf = core::masked_fill(nc, mask, -7);
  for (int64_t j = 0; j < 4; ++j) CHECK(mf.at({1, 2, j}) == (j % 2 ? -7.0 : x.at({1, 2, j})));
  CHECK_THROWS_WITH_AS(core::masked_fill(rnd({4}, 1), ones({2, 4}), 0),
                       "masked_fill: mask of shape [2, 4] does not broadcast to the input shape [4]", Error);

  Tensor sq = rnd({2, 4, 5}, 16);
  for (int64_t k : {-2, -1, 0, 1, 3, 9}) {
    Tensor lo = core::tril(non_contiguous(sq), k), up = core::triu(sq, k);
    for (int64_t m = 0; m < 2; ++m)
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 5; ++j) {
          CHECK(lo.at({m, i, j}) == (j - i <= k ? sq.at({m, i, j}) : 0.0));
          CHECK(up.at({m, i, j}) == (j - i >= k ? sq.at({m, i, j}) : 0.0));
        }
  }
  CHECK_THROWS_WITH_AS(core::tril(rnd({3}, 1)), "tril: expected at least 2 dims, got shape [3]", Error);
}

TEST_CASE("error messages: broadcast and dtype mismatch") {
  CHECK_THROWS_WITH_AS(core::add(zeros({3, 4}), zeros({5})),
                       "add: shapes [3, 4] and [5] cannot be broadcast (dim 1: 4 vs 5)", Error);
  CHECK_THROWS_WITH_AS(core::add(zeros({3}), zeros({3}, DType::f64)), "add: dtype mismatch, f32 vs f64", Error);
  CHECK_THROWS_WITH_AS(core::mul(zeros({3}), zeros({3}, DType::i64)), "mul: dtype mismatch, f32 vs i64", Error);
  CHECK_THROWS_WITH_AS(core::clamp(zeros({3}, DType::i64), 0, 1),
                       "clamp: expected a floating dtype (f32 or f64), got i64", Error);
}

TEST_CASE("long rows split across threads give the same result as one thread") {
  int prev = get_num_threads();
  Tensor a = rnd({200003}, 17), b = rnd({200003}, 18);
  set_num_threads(1);
  Tensor r1 = core::add(a, b), g1 = core::unary(UnaryOp::gelu, a);
  set_num_threads(2);
  Tensor r2 = core::add(a, b), g2 = core::unary(UnaryOp::gelu, a);
  set_num_threads(prev);
  CHECK(max_abs_diff(r1, r2) == 0);
  CHECK(max_abs_diff(g1, g2) == 0);
  CHECK_CLOSE(r1, naive_binary(a, b, [](double x, double y) { return x + y; }), 1e-7);
}

}  // namespace tz::testing
