// Gradcheck cases (f64) for the elementwise ops of ops.def: broadcast and non-contiguous
// inputs, and inputs kept away from kinks (relu/abs at 0, maximum/minimum ties, clamp ends).
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {
Tensor leaf(const Tensor& t) {
  Tensor x = t.detach();
  x.requires_grad_();
  return x;
}
Tensor gauss(const Shape& s, uint64_t seed, double scale = 1.0) {
  Generator gen(seed);
  return randn(s, gen, DType::f64, 0.0, scale);
}
Tensor lf(const Shape& s, uint64_t seed, double scale = 1.0) { return leaf(gauss(s, seed, scale)); }
Tensor nc_lf(const Shape& s, uint64_t seed) { return leaf(non_contiguous(gauss(s, seed))); }
// Values in [lo, hi] (e.g. positive inputs for log/sqrt/pow).
Tensor uniform_lf(const Shape& s, uint64_t seed, double lo, double hi) {
  Generator gen(seed);
  return leaf(rand(s, gen, DType::f64, lo, hi));
}
// Gaussian values pushed at least `gap` away from 0 (relu, abs).
Tensor away_from_zero(const Shape& s, uint64_t seed, double gap = 0.2) {
  std::vector<double> v = gauss(s, seed).to_vector<double>();
  for (double& x : v) x += x >= 0 ? gap : -gap;
  return leaf(from_vector(v, s));
}
}  // namespace

// ---- binary ------------------------------------------------------------------------------
TZ_GRADCHECK_CASE(add, "broadcast [3,1,5] + [4,5]") {
  return GradcheckCase{[](auto& x) { return tz::add(x[0], x[1]); }, {lf({3, 1, 5}, 1), lf({4, 5}, 2)}};
}
TZ_GRADCHECK_CASE(add, "non-contiguous + 0-d, via operator+") {
  return GradcheckCase{[](auto& x) { return x[0] + x[1]; }, {nc_lf({3, 4}, 3), lf({}, 4)}};
}
TZ_GRADCHECK_CASE(sub, "broadcast [4,1] - [3], via operator-") {
  return GradcheckCase{[](auto& x) { return x[0] - x[1]; }, {lf({4, 1}, 5), lf({3}, 6)}};
}
TZ_GRADCHECK_CASE(mul, "broadcast [2,3,1] * [3,4], non-contiguous rhs") {
  return GradcheckCase{[](auto& x) { return tz::mul(x[0], x[1]); }, {lf({2, 3, 1}, 7), nc_lf({3, 4}, 8)}};
}
TZ_GRADCHECK_CASE(mul, "x * x (same tensor twice)") {
  return GradcheckCase{[](auto& x) { return x[0] * x[0]; }, {lf({5}, 9)}};
}
TZ_GRADCHECK_CASE(div, "broadcast [3,4] / [4], denominators in [0.5, 2]") {
  return GradcheckCase{[](auto& x) { return x[0] / x[1]; }, {lf({3, 4}, 10), uniform_lf({4}, 11, 0.5, 2)}};
}
TZ_GRADCHECK_CASE(pow, "a in [0.5, 2] ^ b broadcast") {
  return GradcheckCase{[](auto& x) { return tz::pow(x[0], x[1]); }, {uniform_lf({3, 4}, 12, 0.5, 2), lf({1, 4}, 13)}};
}
TZ_GRADCHECK_CASE(maximum, "broadcast, no ties") {
  return GradcheckCase{[](auto& x) { return tz::maximum(x[0], x[1]); }, {lf({3, 4}, 14), lf({4}, 15)}};
}
TZ_GRADCHECK_CASE(minimum, "non-contiguous, no ties") {
  return GradcheckCase{[](auto& x) { return tz::minimum(x[0], x[1]); }, {nc_lf({4, 3}, 16), lf({4, 3}, 17)}};
}
TZ_GRADCHECK_CASE(where, "i64 cond [3] broadcast with a [2,1] and b [2,3]") {
  Tensor cond = from_vector(std::vector<int64_t>{1, 0, 1});
  return GradcheckCase{[cond](auto& x) { return tz::where(cond, x[0], x[1]); }, {lf({2, 1}, 18), lf({2, 3}, 19)}};
}

// ---- with a scalar -----------------------------------------------------------------------
TZ_GRADCHECK_CASE(add_scalar, "x + 2.5 and 1 - x (double - Tensor)") {
  return GradcheckCase{[](auto& x) { return (x[0] + 2.5) * (1.0 - x[0]); }, {lf({3, 4}, 20)}};
}
TZ_GRADCHECK_CASE(mul_scalar, "3 * x / 4 on a non-contiguous x") {
  return GradcheckCase{[](auto& x) { return 3.0 * x[0] / 4.0; }, {nc_lf({3, 4}, 21)}};
}
TZ_GRADCHECK_CASE(pow_scalar, "x^2.5 for x in [0.5, 2]") {
  return GradcheckCase{[](auto& x) { return tz::pow_scalar(x[0], 2.5); }, {uniform_lf({7}, 22, 0.5, 2)}};
}
TZ_GRADCHECK_CASE(pow_scalar, "x^2 and x^-1 for any sign") {
  return GradcheckCase{[](auto& x) { return tz::pow_scalar(x[0], 2) + tz::pow_scalar(tz::add_scalar(x[0], 5), -1); },
                       {uniform_lf({6}, 23, -2, 2)}};
}
TZ_GRADCHECK_CASE(clamp, "values away from lo = -0.5 and hi = 0.7") {
  Tensor x = leaf(from_vector(std::vector<double>{-1.3, -0.6, -0.2, 0.1, 0.4, 0.69, 0.9, 2.0}, {2, 4}));
  return GradcheckCase{[](auto& x) { return tz::clamp(x[0], -0.5, 0.7); }, {x}};
}
TZ_GRADCHECK_CASE(masked_fill, "mask [4] broadcast over [3, 4]") {
  Tensor mask = from_vector(std::vector<double>{0, 1, 1, 0});
  return GradcheckCase{[mask](auto& x) { return tz::masked_fill(x[0], mask, -5.0); }, {nc_lf({3, 4}, 24)}};
}

// ---- unary -------------------------------------------------------------------------------
TZ_GRADCHECK_CASE(neg, "-x, via Tensor::operator-") {
  return GradcheckCase{[](auto& x) { return -x[0]; }, {nc_lf({3, 4}, 25)}};
}
TZ_GRADCHECK_CASE(exp, "exp") {
  return GradcheckCase{[](auto& x) { return tz::exp(x[0]); }, {nc_lf({3, 4}, 26)}};
}
TZ_GRADCHECK_CASE(log, "log on [0.3, 3]") {
  return GradcheckCase{[](auto& x) { return tz::log(x[0]); }, {uniform_lf({3, 4}, 27, 0.3, 3)}};
}
TZ_GRADCHECK_CASE(sqrt, "sqrt on [0.3, 3]") {
  return GradcheckCase{[](auto& x) { return tz::sqrt(x[0]); }, {uniform_lf({3, 4}, 28, 0.3, 3)}};
}
TZ_GRADCHECK_CASE(rsqrt, "rsqrt on [0.3, 3]") {
  return GradcheckCase{[](auto& x) { return tz::rsqrt(x[0]); }, {uniform_lf({3, 4}, 29, 0.3, 3)}};
}
TZ_GRADCHECK_CASE(abs, "abs away from 0") {
  return GradcheckCase{[](auto& x) { return tz::abs(x[0]); }, {away_from_zero({3, 4}, 30)}};
}
TZ_GRADCHECK_CASE(sin, "sin") {
  return GradcheckCase{[](auto& x) { return tz::sin(x[0]); }, {lf({3, 4}, 31, 2.0)}};
}
TZ_GRADCHECK_CASE(cos, "cos, non-contiguous") {
  return GradcheckCase{[](auto& x) { return tz::cos(x[0]); }, {nc_lf({3, 4}, 32)}};
}
TZ_GRADCHECK_CASE(tanh, "tanh") {
  return GradcheckCase{[](auto& x) { return tz::tanh(x[0]); }, {lf({3, 4}, 33, 2.0)}};
}
TZ_GRADCHECK_CASE(sigmoid, "sigmoid") {
  return GradcheckCase{[](auto& x) { return tz::sigmoid(x[0]); }, {lf({3, 4}, 34, 3.0)}};
}
TZ_GRADCHECK_CASE(log_sigmoid, "log_sigmoid including large |x|") {
  Tensor x = leaf(from_vector(std::vector<double>{-40, -5, -0.5, 0.3, 2, 40}));
  return GradcheckCase{[](auto& x) { return tz::log_sigmoid(x[0]); }, {x}};
}
TZ_GRADCHECK_CASE(softplus, "softplus including large |x|") {
  Tensor x = leaf(from_vector(std::vector<double>{-40, -5, -0.5, 0.3, 2, 40}));
  return GradcheckCase{[](auto& x) { return tz::softplus(x[0]); }, {x}};
}
TZ_GRADCHECK_CASE(relu, "relu away from 0") {
  return GradcheckCase{[](auto& x) { return tz::relu(x[0]); }, {away_from_zero({3, 4}, 35)}};
}
TZ_GRADCHECK_CASE(gelu, "gelu (erf)") {
  return GradcheckCase{[](auto& x) { return tz::gelu(x[0]); }, {lf({3, 4}, 36, 2.0)}};
}
TZ_GRADCHECK_CASE(gelu_tanh, "gelu_tanh, non-contiguous") {
  return GradcheckCase{[](auto& x) { return tz::gelu_tanh(x[0]); }, {nc_lf({3, 4}, 37)}};
}
TZ_GRADCHECK_CASE(silu, "silu") {
  return GradcheckCase{[](auto& x) { return tz::silu(x[0]); }, {lf({3, 4}, 38, 2.0)}};
}
TZ_GRADCHECK_CASE(tril, "tril k = 0 of [2, 3, 4]") {
  return GradcheckCase{[](auto& x) { return tz::tril(x[0]); }, {lf({2, 3, 4}, 39)}};
}
TZ_GRADCHECK_CASE(triu, "triu k = 1 of a non-contiguous [4, 3]") {
  return GradcheckCase{[](auto& x) { return tz::triu(x[0], 1); }, {nc_lf({4, 3}, 40)}};
}

// ---- autograd behaviour beyond gradcheck -----------------------------------------------------
TEST_CASE("elementwise autograd: subgradients at kinks, tie rule, no-grad inputs") {
  Tensor x = from_vector(std::vector<double>{-1, 0, 2});
  x.requires_grad_();
  tz::sum(tz::relu(x) + tz::abs(x)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{-1, 0, 2});  // relu'(0) = |.|'(0) = 0
  Tensor a = from_vector(std::vector<double>{1, 2}), b = from_vector(std::vector<double>{1, 3});
  a.requires_grad_();
  b.requires_grad_();
  tz::sum(tz::maximum(a, b)).backward();
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 0});  // tie at index 0 goes to a
  CHECK(b.grad().to_vector<double>() == std::vector<double>{0, 1});
  // An input that does not require grad gets none, and the graph records the op.
  Tensor c = from_vector(std::vector<double>{1, 2});
  c.requires_grad_();
  Tensor y = tz::mul(c, from_vector(std::vector<double>{3, 4}));
  CHECK(std::string(y.grad_fn_name()) == "mul");
  tz::sum(y).backward();
  CHECK(c.grad().to_vector<double>() == std::vector<double>{3, 4});
  // pow's exponent gradient is 0 (not NaN) where the base is 0.
  Tensor base = from_vector(std::vector<double>{0, 2}), ex = from_vector(std::vector<double>{2, 3});
  ex.requires_grad_();
  tz::sum(tz::pow(base, ex)).backward();
  CHECK(ex.grad().to_vector<double>()[0] == 0);
  CHECK(ex.grad().to_vector<double>()[1] == doctest::Approx(8 * std::log(2.0)));
}

}  // namespace tz::testing
