// Causal conv1d and sort/top-k: kernels vs references over awkward sizes (T < K, K = 1,
// 3, 4; rows of 0, 1, 7, 63, 1000+), the tensor layer vs the direct formula / a
// std::stable_sort reference (ties, NaN, any dim, non-contiguous), and error messages.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/index.h"
#include "core/kernels/conv1d.h"
#include "core/kernels/sort.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

template <class T>
std::vector<T> randvec(int64_t n, Generator& gen) {
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& e : v) e = T(gen.normal());
  return v;
}

template <class T>
double rel_err(const std::vector<T>& a, const std::vector<T>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = double(a[i]) - double(b[i]);
    if (!std::isfinite(d)) return INFINITY;
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

template <class T>
void check_conv_kernels(Generator& gen, double tol) {
  struct Case {
    int64_t B, Tn, C, K;
  };
  const Case cases[] = {{1, 1, 1, 1},    {2, 5, 3, 3},     {1, 2, 7, 4}, {3, 7, 63, 4}, {2, 63, 130, 3},
                        {1, 1000, 9, 4}, {2, 300, 200, 1}, {0, 4, 3, 2}, {2, 0, 3, 2},  {1, 3, 5, 6}};
  for (Case c : cases) {
    const auto [B, T_, C, K] = c;
    CAPTURE(B);
    CAPTURE(T_);
    CAPTURE(C);
    CAPTURE(K);
    std::vector<T> x = randvec<T>(B * T_ * C, gen), w = randvec<T>(C * K, gen), bias = randvec<T>(C, gen),
                   dy = randvec<T>(B * T_ * C, gen);
    for (bool with_bias : {false, true}) {
      const T* bp = with_bias ? bias.data() : nullptr;
      std::vector<T> y(x.size(), T(NAN)), y_ref(x.size(), T(NAN));
      kernels::conv1d_causal_forward<T>(y.data(), x.data(), w.data(), bp, B, T_, C, K);
      kernels::conv1d_causal_forward_ref<T>(y_ref.data(), x.data(), w.data(), bp, B, T_, C, K);
      CHECK(rel_err(y, y_ref) <= tol);
    }
    // Backward accumulates into pre-filled buffers.
    std::vector<T> dx(x.size(), T(0.5)), dw(w.size(), T(0.25)), db(size_t(C), T(-1));
    std::vector<T> dx_ref = dx, dw_ref = dw, db_ref = db;
    kernels::conv1d_causal_backward<T>(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), B, T_, C, K);
    kernels::conv1d_causal_backward_ref<T>(dx_ref.data(), dw_ref.data(), db_ref.data(), dy.data(), x.data(), w.data(),
                                           B, T_, C, K);
    CHECK(rel_err(dx, dx_ref) <= tol);
    CHECK(rel_err(dw, dw_ref) <= tol);
    CHECK(rel_err(db, db_ref) <= tol);
    // Only some gradients asked for.
    std::vector<T> dw2(w.size(), T(0.25));
    kernels::conv1d_causal_backward<T>(nullptr, dw2.data(), nullptr, dy.data(), x.data(), w.data(), B, T_, C, K);
    CHECK(rel_err(dw2, dw_ref) <= tol);
  }
}

// y[b,t,c] = bias[c] + sum_k w[c,k] x[b,t-K+1+k,c], straight from the definition, in f64.
Tensor conv_direct(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), K = w.size(1);
  std::vector<double> y(size_t(B * T * C));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        double acc = bias.defined() ? bias.at({c}) : 0.0;
        for (int64_t k = 0; k < K; ++k)
          if (t - K + 1 + k >= 0) acc += w.at({c, k}) * x.at({b, t - K + 1 + k, c});
        y[size_t((b * T + t) * C + c)] = acc;
      }
  return from_vector(y, {B, T, C});
}

// The stable-sort reference along the last dim of a 2-D f64 tensor: indices [R, N].
std::vector<int64_t> stable_argsort_rows(const std::vector<double>& x, int64_t R, int64_t N, bool descending) {
  std::vector<int64_t> out;
  for (int64_t r = 0; r < R; ++r) {
    std::vector<int64_t> o(static_cast<size_t>(N));
    std::iota(o.begin(), o.end(), int64_t(0));
    auto key = [&](int64_t i) { return x[size_t(r * N + i)]; };
    std::stable_sort(o.begin(), o.end(), [&](int64_t a, int64_t b) {
      double va = key(a), vb = key(b);
      if (descending) return std::isnan(va) ? !std::isnan(vb) : vb < va;  // NaN is largest
      return std::isnan(vb) ? !std::isnan(va) : va < vb;
    });
    out.insert(out.end(), o.begin(), o.end());
  }
  return out;
}

// Rows with many ties (values from a small set) and a few NaNs.
template <class T>
std::vector<T> tie_values(int64_t n, Generator& gen, bool with_nan) {
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& e : v) {
    e = T(gen.randint(-4, 5));
    if constexpr (std::is_floating_point_v<T>)
      if (with_nan && gen.uniform() < 0.05) e = T(NAN);
  }
  return v;
}

template <class T>
void check_sort_kernels(Generator& gen) {
  for (int64_t N : {int64_t(0), int64_t(1), int64_t(7), int64_t(63), int64_t(1000), int64_t(4099)}) {
    for (int64_t R : {int64_t(1), int64_t(3), int64_t(40)}) {
      CAPTURE(N);
      CAPTURE(R);
      std::vector<T> x = tie_values<T>(R * N, gen, true);
      for (bool desc : {false, true}) {
        CAPTURE(desc);
        std::vector<T> v(x.size()), v_ref(x.size());
        std::vector<int64_t> i(x.size()), i_ref(x.size());
        kernels::sort_rows<T>(v.data(), i.data(), x.data(), R, N, desc);
        kernels::sort_rows_ref<T>(v_ref.data(), i_ref.data(), x.data(), R, N, desc);
        CHECK(i == i_ref);
        CHECK((v.empty() || std::memcmp(v.data(), v_ref.data(), v.size() * sizeof(T)) == 0));  // NaN-safe
        for (int64_t k : {int64_t(0), int64_t(1), N / 9, N / 2, N}) {
          if (k > N) continue;
          CAPTURE(k);
          std::vector<T> tv(size_t(R * k)), tv_ref(size_t(R * k));
          std::vector<int64_t> ti(size_t(R * k)), ti_ref(size_t(R * k));
          kernels::topk_rows<T>(tv.data(), ti.data(), x.data(), R, N, k, desc);
          kernels::topk_rows_ref<T>(tv_ref.data(), ti_ref.data(), x.data(), R, N, k, desc);
          CHECK(ti == ti_ref);
          // top-k is the first k of the sort.
          bool prefix = true;
          for (int64_t r = 0; r < R; ++r)
            for (int64_t j = 0; j < k; ++j) prefix &= ti[size_t(r * k + j)] == i_ref[size_t(r * N + j)];
          CHECK(prefix);
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("conv1d kernels: fast vs reference (K = 1, 3, 4, 6, T < K, f32 and f64)") {
  Generator gen(21);
  int threads = get_num_threads();
  for (int nt : {1, 2}) {
    set_num_threads(nt);
    check_conv_kernels<float>(gen, 1e-5);
    check_conv_kernels<double>(gen, 1e-13);
  }
  set_num_threads(threads);
}

TEST_CASE("conv1d_causal: direct formula, non-contiguous x, with and without bias") {
  Generator gen(22);
  for (int64_t K : {1, 3, 4}) {
    for (int64_t T : {2, 9}) {  // T = 2 < K for K = 3, 4
      CAPTURE(K);
      CAPTURE(T);
      // x stored as [B, C, T] and viewed as [B, T, C]: non-contiguous.
      Tensor x = randn({2, 5, T}, gen, DType::f64).transpose(1, 2);
      Tensor w = randn({5, K}, gen, DType::f64), b = randn({5}, gen, DType::f64);
      CHECK(max_abs_diff(core::conv1d_causal(x, w, b), conv_direct(x, w, b)) <= 1e-12);
      CHECK(max_abs_diff(core::conv1d_causal(x, non_contiguous(w)), conv_direct(x, w, Tensor())) <= 1e-12);
      Tensor xf = x.to(DType::f32), wf = w.to(DType::f32), bf = b.to(DType::f32);
      CHECK_CLOSE(core::conv1d_causal(xf, wf, bf), conv_direct(x, w, b).to(DType::f32), 1e-5);
    }
  }
  // Causality: changing x at time 5 leaves y before time 5 unchanged.
  Tensor x = randn({1, 10, 3}, gen, DType::f64), w = randn({3, 4}, gen, DType::f64);
  Tensor y1 = core::conv1d_causal(x, w);
  Tensor x2 = core::clone(x);
  x2.set({0, 5, 1}, 100.0);
  Tensor y2 = core::conv1d_causal(x2, w);
  CHECK(max_abs_diff(y1.narrow(1, 0, 5), y2.narrow(1, 0, 5)) == 0);
  CHECK(max_abs_diff(y1.narrow(1, 5, 1), y2.narrow(1, 5, 1)) > 0);
}

TEST_CASE("conv1d_causal backward: matches the reference and is deterministic across threads") {
  Generator gen(23);
  Tensor x = randn({4, 700, 96}, gen, DType::f32), w = randn({96, 4}, gen, DType::f32);
  Tensor g = randn({4, 700, 96}, gen, DType::f32);
  int threads = get_num_threads();
  set_num_threads(1);
  core::Conv1dGrads a = core::conv1d_causal_backward(g, x, w, true, true, true);
  set_num_threads(2);
  core::Conv1dGrads b = core::conv1d_causal_backward(non_contiguous(g), x, w, true, true, true);
  set_num_threads(threads);
  CHECK(max_abs_diff(a.dx, b.dx) == 0);
  CHECK(max_abs_diff(a.dweight, b.dweight) == 0);
  CHECK(max_abs_diff(a.dbias, b.dbias) == 0);
  core::Conv1dGrads none = core::conv1d_causal_backward(g, x, w, false, true, false);
  CHECK(!none.dx.defined());
  CHECK(!none.dbias.defined());
  CHECK(max_abs_diff(none.dweight, a.dweight) == 0);
}

TEST_CASE("conv1d_causal errors") {
  Tensor x = zeros({2, 5, 3});
  CHECK_THROWS_WITH_AS(core::conv1d_causal(zeros({5, 3}), zeros({3, 2})), doctest::Contains("x must be [B, T, C]"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(core::conv1d_causal(x, zeros({4, 2})),
                       doctest::Contains("weight must be [C, K] with C = 3, got shape [4, 2]"), tz::Error);
  CHECK_THROWS_WITH_AS(core::conv1d_causal(x, zeros({3, 0})), doctest::Contains("K must be >= 1"), tz::Error);
  CHECK_THROWS_WITH_AS(core::conv1d_causal(x, zeros({3, 2}, DType::f64)), doctest::Contains("dtype"), tz::Error);
  CHECK_THROWS_WITH_AS(core::conv1d_causal(x, zeros({3, 2}), zeros({4})), doctest::Contains("bias must be [C]"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(core::conv1d_causal(zeros({2, 5, 3}, DType::i64), zeros({3, 2}, DType::i64)),
                       doctest::Contains("floating"), tz::Error);
}

TEST_CASE("sort/top-k kernels: fast vs stable_sort reference, ties and NaN (f32, f64, i64)") {
  Generator gen(31);
  int threads = get_num_threads();
  for (int nt : {1, 2}) {
    set_num_threads(nt);
    check_sort_kernels<float>(gen);
    check_sort_kernels<double>(gen);
    check_sort_kernels<int64_t>(gen);
  }
  set_num_threads(threads);
}

TEST_CASE("sort: stated order for ties and NaN") {
  Tensor x = tensor({2, NAN, 1, 2, -INFINITY, NAN, 1}, DType::f64);
  auto asc = core::sort(x, 0, false);
  CHECK(asc.indices.to_vector<int64_t>() == std::vector<int64_t>{4, 2, 6, 0, 3, 1, 5});
  auto desc = core::sort(x, 0, true);
  CHECK(desc.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 5, 0, 3, 2, 6, 4});
  auto top = core::topk(x, 3, 0, true);
  CHECK(top.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 5, 0});
  CHECK(std::isnan(top.values.at({0})));
  auto bottom = core::topk(x, 2, 0, false);
  CHECK(bottom.indices.to_vector<int64_t>() == std::vector<int64_t>{4, 2});
  CHECK(bottom.values.at({0}) == -INFINITY);
}

TEST_CASE("sort/topk tensor layer: any dim, non-contiguous, negative dims, 0-d, i64") {
  Generator gen(32);
  std::vector<double> xv = tie_values<double>(4 * 6 * 5, gen, false);
  Tensor x = from_vector(xv, {4, 6, 5});
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    for (bool desc : {false, true}) {
      CAPTURE(dim);
      CAPTURE(desc);
      const int64_t d = wrap_dim(dim, 3, "test");
      // Reference: move dim last, stable-sort rows, compare.
      Shape perm;
      for (int64_t j = 0; j < 3; ++j)
        if (j != d) perm.push_back(j);
      perm.push_back(d);
      Tensor xp = x.permute(perm).contiguous();
      const int64_t N = x.size(d), R = x.numel() / N;
      std::vector<int64_t> ref = stable_argsort_rows(xp.to_vector<double>(), R, N, desc);
      auto s = core::sort(non_contiguous(x), dim, desc);
      CHECK(s.indices.permute(perm).contiguous().to_vector<int64_t>() == ref);
      CHECK(max_abs_diff(s.values, core::gather(x, dim, s.indices)) == 0);
      for (int64_t k : {int64_t(0), int64_t(1), N}) {
        auto t = core::topk(non_contiguous(x), k, dim, desc);
        Shape ks = x.shape();
        ks[size_t(d)] = k;
        REQUIRE(t.indices.shape() == ks);
        CHECK(max_abs_diff(t.indices, s.indices.narrow(d, 0, k)) == 0);
        CHECK(max_abs_diff(t.values, s.values.narrow(d, 0, k)) == 0);
      }
    }
  }
  // i64 data, 0-d and empty.
  auto si = core::sort(from_vector(std::vector<int64_t>{3, -1, 3, 0}), -1, true);
  CHECK(si.values.to_vector<int64_t>() == std::vector<int64_t>{3, 3, 0, -1});
  CHECK(si.indices.to_vector<int64_t>() == std::vector<int64_t>{0, 2, 3, 1});
  auto s0 = core::sort(scalar_tensor(2.5), 0);
  CHECK(s0.values.dim() == 0);
  CHECK(s0.values.item() == 2.5);
  CHECK(s0.indices.item() == 0);
  CHECK(core::sort(zeros({3, 0}), -1).indices.shape() == Shape{3, 0});
  CHECK(core::topk(zeros({0, 4}), 2, 1).values.shape() == Shape{0, 2});
  // Errors.
  CHECK_THROWS_WITH_AS(core::topk(x, 7, 1), doctest::Contains("k = 7 out of range [0, 6]"), tz::Error);
  CHECK_THROWS_WITH_AS(core::topk(x, -1, 1), doctest::Contains("topk"), tz::Error);
  CHECK_THROWS_WITH_AS(core::sort(x, 3), doctest::Contains("sort"), tz::Error);
}

}  // namespace tz::testing
