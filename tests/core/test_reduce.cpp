// Reductions: kernels vs their plain references, the tensor layer vs a naive f64 loop over
// any dims/strides/keepdim, edge cases (empty, -inf, NaN, ties) and error messages.
#include <cmath>
#include <functional>
#include <limits>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/reduce.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/reduce.h"
#include "core/tensor.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

const int64_t kSizes[] = {1, 7, 63, 1000, 4099};

// Naive reduction of x over one dim in f64: out[o, i] = fn(column of N values).
Tensor naive_reduce(const Tensor& x, int64_t dim, bool keepdim,
                    const std::function<double(const std::vector<double>&)>& fn) {
  dim = wrap_dim(dim, x.dim(), "test");
  std::vector<double> v = x.to_vector<double>();
  int64_t O = 1, N = x.shape()[size_t(dim)], I = 1;
  for (int64_t d = 0; d < dim; ++d) O *= x.shape()[size_t(d)];
  for (int64_t d = dim + 1; d < x.dim(); ++d) I *= x.shape()[size_t(d)];
  std::vector<double> out(size_t(O * I));
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      std::vector<double> col(static_cast<size_t>(N));
      for (int64_t n = 0; n < N; ++n) col[size_t(n)] = v[size_t((o * N + n) * I + i)];
      out[size_t(o * I + i)] = fn(col);
    }
  Shape s = x.shape();
  if (keepdim)
    s[size_t(dim)] = 1;
  else
    s.erase(s.begin() + dim);
  return from_vector(out, s);
}

double vsum(const std::vector<double>& c) {
  double s = 0;
  for (double v : c) s += v;
  return s;
}

Tensor as64(const Tensor& t) { return core::contiguous_as(t, DType::f64); }

}  // namespace

TEST_CASE("reduce kernels: sum/var/logsumexp fast vs reference over awkward sizes") {
  Generator gen(7);
  for (int64_t N : {int64_t(0), int64_t(1), int64_t(7), int64_t(63), int64_t(1000), int64_t(4099), int64_t(40000)}) {
    for (auto [O, I] : {std::pair<int64_t, int64_t>{1, 1}, {3, 1}, {2, 5}, {1, 300}, {4, 7}}) {
      CAPTURE(N);
      CAPTURE(O);
      CAPTURE(I);
      Tensor x = randn({O, N, I}, gen, DType::f32);
      Tensor a = empty({O, I}, DType::f32), b = empty({O, I}, DType::f32);
      const float* xp = x.data<float>();
      kernels::sum_forward<float>(a.data<float>(), xp, O, N, I, 0.5);
      kernels::sum_forward_ref<float>(b.data<float>(), xp, O, N, I, 0.5);
      CHECK(max_abs_diff(a, b) <= 1e-4);
      if (N >= 2) {
        kernels::var_forward<float>(a.data<float>(), xp, O, N, I, 1);
        kernels::var_forward_ref<float>(b.data<float>(), xp, O, N, I, 1);
        CHECK_CLOSE(a, b, 1e-6);
      }
      kernels::logsumexp_forward<float>(a.data<float>(), xp, O, N, I);
      kernels::logsumexp_forward_ref<float>(b.data<float>(), xp, O, N, I);
      if (N > 0)
        CHECK_CLOSE(a, b, 1e-6);
      else
        CHECK(std::isinf(a.to_vector<double>()[0]));
      Tensor xd = as64(x);
      Tensor c = empty({O, I}, DType::f64), d = empty({O, I}, DType::f64);
      kernels::sum_forward<double>(c.data<double>(), xd.data<double>(), O, N, I, 1.0);
      kernels::sum_forward_ref<double>(d.data<double>(), xd.data<double>(), O, N, I, 1.0);
      CHECK(max_abs_diff(c, d) <= 1e-9);
    }
  }
}

TEST_CASE("reduce: f32 sum of a long vector is accurate (f64 accumulation)") {
  Tensor x = full({1 << 22}, 0.1, DType::f32);  // 4M values of 0.1f
  double exact = double(0.1f) * double(1 << 22);
  CHECK(std::abs(core::sum(x).item() - exact) / exact < 1e-6);
  // Result is the same for any thread count (fixed blocks, fixed combine order).
  int saved = get_num_threads();
  Tensor r = randn({100003}, DType::f32);
  set_num_threads(1);
  double s1 = core::sum(r).item();
  set_num_threads(2);
  double s2 = core::sum(r).item();
  set_num_threads(saved);
  CHECK(s1 == s2);
}

TEST_CASE("reduce: sum/mean over dims, keepdim, non-contiguous, f32/f64/i64") {
  Generator gen(1);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x0 = randn({4, 5, 6}, gen, dt);
    for (bool nc : {false, true}) {
      Tensor x = nc ? non_contiguous(x0) : x0;
      CHECK(x.is_contiguous() == !nc);
      for (int64_t d : {0, 1, 2, -1})
        for (bool keep : {false, true}) {
          CAPTURE(d);
          CAPTURE(keep);
          CHECK_CLOSE(as64(core::sum(x, {d}, keep)), naive_reduce(x0, d, keep, vsum), 1e-6);
          CHECK_CLOSE(as64(core::mean(x, {d}, keep)),
                      naive_reduce(x0, d, keep, [](auto& c) { return vsum(c) / double(c.size()); }), 1e-6);
        }
      // All dims, and non-adjacent dims {0, 2} (the permuted path).
      CHECK(std::abs(core::sum(x).item() - vsum(x0.to_vector<double>())) < 1e-4);
      CHECK(core::sum(x).dim() == 0);
      CHECK(core::sum(x, {}, true).shape() == Shape{1, 1, 1});
      Tensor s02 = core::sum(x, {0, 2});
      Tensor ref = naive_reduce(naive_reduce(x0, 2, false, vsum), 0, false, vsum);
      CHECK(s02.shape() == Shape{5});
      CHECK_CLOSE(as64(s02), ref, 1e-6);
      CHECK(core::sum(x, {2, 0}, true).shape() == Shape{1, 5, 1});
      std::vector<double> rv = ref.to_vector<double>();
      for (double& v : rv) v /= 24;
      CHECK_CLOSE(as64(core::mean(x, {-1, 0})), from_vector(rv, {5}), 1e-6);
    }
  }
  Tensor xi = arange(24).view({2, 3, 4});
  CHECK(core::sum(xi).item() == 276);
  CHECK(core::sum(xi).dtype() == DType::i64);
  CHECK(core::sum(xi, {1}).to_vector<int64_t>() == std::vector<int64_t>{12, 15, 18, 21, 48, 51, 54, 57});
  // Empty: sum 0, mean NaN; a 0-d tensor reduces over "dim 0".
  CHECK(core::sum(zeros({0, 3})).to_vector<double>() == std::vector<double>{0});
  CHECK(core::sum(zeros({0, 3}), {0}).to_vector<double>() == std::vector<double>{0, 0, 0});
  CHECK(std::isnan(core::mean(zeros({0})).item()));
  CHECK(core::sum(scalar_tensor(2.5), {0}).item() == 2.5);
}

TEST_CASE("reduce: var, max/min/argmax, logsumexp, cumsum vs naive loops") {
  Generator gen(3);
  for (DType dt : {DType::f32, DType::f64}) {
    for (int64_t n : kSizes) {
      Tensor x0 = randn({3, n}, gen, dt);
      for (bool nc : {false, true}) {
        Tensor x = nc ? non_contiguous(x0) : x0;
        for (int64_t d : {0, 1, -1}) {
          CAPTURE(n);
          CAPTURE(d);
          for (int64_t corr : {0, 1}) {
            int64_t N = x0.shape()[size_t(wrap_dim(d, 2, "t"))];
            if (N - corr <= 0) continue;
            auto vref = [corr](auto& c) {
              double m = vsum(c) / double(c.size()), q = 0;
              for (double v : c) q += (v - m) * (v - m);
              return q / double(int64_t(c.size()) - corr);
            };
            CHECK_CLOSE(as64(core::var(x, d, corr, true)), naive_reduce(x0, d, true, vref), 1e-5);
          }
          auto mx = core::max(x, d);
          CHECK_CLOSE(as64(mx.values),
                      naive_reduce(x0, d, false, [](auto& c) { return *std::max_element(c.begin(), c.end()); }), 0);
          CHECK_CLOSE(as64(mx.indices),
                      naive_reduce(x0, d, false,
                                   [](auto& c) { return double(std::max_element(c.begin(), c.end()) - c.begin()); }),
                      0);
          auto mn = core::min(x, d, true);
          CHECK_CLOSE(as64(mn.values),
                      naive_reduce(x0, d, true, [](auto& c) { return *std::min_element(c.begin(), c.end()); }), 0);
          CHECK_CLOSE(as64(core::argmax(x, d)), as64(mx.indices), 0);
          CHECK_CLOSE(as64(core::logsumexp(x, d)),
                      naive_reduce(x0, d, false,
                                   [](auto& c) {
                                     double s = 0;
                                     for (double v : c) s += std::exp(v);
                                     return std::log(s);
                                   }),
                      1e-6);
          // cumsum: its last entry along d is the sum.
          Tensor cs = core::cumsum(x, d);
          CHECK(cs.shape() == x.shape());
          int64_t dd = wrap_dim(d, 2, "t");
          Tensor last = cs.select(dd, x.shape()[size_t(dd)] - 1);
          CHECK_CLOSE(as64(last), naive_reduce(x0, d, false, vsum), 1e-5);
        }
      }
    }
  }
  CHECK(core::cumsum(tensor({1, 2, 3, 4}, DType::f64), 0).to_vector<double>() == std::vector<double>{1, 3, 6, 10});
  CHECK(core::cumsum(arange(5), 0).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 3, 6, 10});
}

TEST_CASE("reduce: ties, NaN, infinities, var with too few elements") {
  Tensor t = tensor({1, 3, 3, 2, 3}, DType::f32);
  CHECK(core::argmax(t, 0).item() == 1);
  CHECK(core::min(tensor({2, 1, 1}), 0).indices.item() == 1);
  Tensor nan = tensor({1, NAN, 5});
  CHECK(std::isnan(core::max(nan, 0).values.item()));
  CHECK(core::max(nan, 0).indices.item() == 1);
  CHECK(std::isnan(core::min(nan, 0).values.item()));
  // logsumexp stays finite for huge inputs and is -inf for an all -inf row.
  CHECK(std::abs(core::logsumexp(tensor({1000, 1000}), 0).item() - (1000 + std::log(2.0))) < 1e-3);
  Tensor ninf = full({2, 3}, -INFINITY);
  for (double v : core::logsumexp(ninf, 1).to_vector<double>()) CHECK(v == -INFINITY);
  CHECK(core::logsumexp(tensor({1, INFINITY}), 0).item() == INFINITY);
  CHECK(std::isnan(core::var(tensor({1.0}), 0).item()));  // 0 / 0 like PyTorch
  CHECK(core::var(tensor({1.0}), 0, 0).item() == 0);
}

TEST_CASE("reduce: sum_to") {
  Generator gen(5);
  Tensor g = randn({2, 3, 4}, gen, DType::f64);
  CHECK_CLOSE(core::sum_to(g, {3, 1}), core::sum(g, {0, 2}).view({3, 1}), 1e-12);
  CHECK_CLOSE(core::sum_to(g, {4}), core::sum(g, {0, 1}), 1e-12);
  CHECK_CLOSE(core::sum_to(g, {1, 3, 4}), core::sum(g, {0}, true), 1e-12);
  CHECK(core::sum_to(g, {}).dim() == 0);
  CHECK(core::sum_to(g, {2, 3, 4}).shares_storage(g));
  CHECK(core::sum_to(arange(6).view({2, 3}), {3}).to_vector<int64_t>() == std::vector<int64_t>{3, 5, 7});
  CHECK(core::sum_to(g, {1, 1}).dtype() == DType::f64);
}

TEST_CASE("reduce: errors name the op and the facts") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_AS(core::sum(x, {2}), doctest::Contains("sum"), tz::Error);
  CHECK_THROWS_WITH_AS(core::sum(x, {0, -2}), doctest::Contains("repeated"), tz::Error);
  CHECK_THROWS_WITH_AS(core::mean(arange(3), {}), doctest::Contains("mean: expected a floating"), tz::Error);
  CHECK_THROWS_WITH_AS(core::var(arange(3), 0), doctest::Contains("var"), tz::Error);
  CHECK_THROWS_WITH_AS(core::max(zeros({2, 0}), 1), doctest::Contains("size 0"), tz::Error);
  CHECK_THROWS_WITH_AS(core::logsumexp(x, -3), doctest::Contains("logsumexp"), tz::Error);
  CHECK_THROWS_WITH_AS(core::sum_to(x, {4}), doctest::Contains("[4]"), tz::Error);
  CHECK_THROWS_WITH_AS(core::sum_to(x, {1, 2, 3}), doctest::Contains("sum_to"), tz::Error);
  CHECK_THROWS_WITH_AS(core::var(x, 0, -1), doctest::Contains("correction"), tz::Error);
}

}  // namespace tz::testing
