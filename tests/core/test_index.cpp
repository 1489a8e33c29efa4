// Indexing and joining: kernels vs their references over awkward sizes, the tensor layer
// vs naive loops (non-contiguous inputs, negative dims, i64 data), determinism across
// thread counts, and error messages.
#include <vector>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/index.h"
#include "core/kernels/index.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {

template <class T>
std::vector<T> random_values(int64_t n, Generator& gen) {
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& e : v) {
    e = T(gen.randint(-50, 50));
    if constexpr (!std::is_integral_v<T>) e += T(gen.uniform());
  }
  return v;
}
std::vector<int64_t> random_ids(int64_t n, int64_t bound, Generator& gen) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& e : v) e = gen.randint(0, bound);
  return v;
}

struct Dims {
  int64_t O, N, I, M;
};
const Dims kDims[] = {{1, 1, 1, 1},    {1, 7, 1, 0},    {0, 3, 4, 2},   {2, 0, 3, 0},
                      {3, 7, 5, 9},    {1, 63, 1, 63},  {2, 5, 300, 7}, {1, 1000, 3, 1500},
                      {7, 4, 1033, 6}, {1031, 3, 2, 4}, {1, 1, 4099, 1}};

template <class T>
void check_index_kernels(Generator& gen) {
  for (Dims d : kDims) {
    const auto [O, N, I, M] = d;
    CAPTURE(O);
    CAPTURE(N);
    CAPTURE(I);
    CAPTURE(M);
    std::vector<T> x = random_values<T>(O * N * I, gen);
    std::vector<T> g = random_values<T>(O * M * I, gen);
    std::vector<int64_t> idx1 = random_ids(N ? M : 0, N, gen);         // index_select
    std::vector<int64_t> idx = random_ids(N ? O * M * I : 0, N, gen);  // gather/scatter
    if (N == 0 && M > 0) continue;                                     // no valid index exists
    std::vector<T> a(size_t(O * M * I), T(-7)), b = a;
    kernels::index_select_forward<T>(a.data(), x.data(), idx1.data(), O, N, I, M);
    kernels::index_select_forward_ref<T>(b.data(), x.data(), idx1.data(), O, N, I, M);
    CHECK(a == b);
    std::vector<T> dx(size_t(O * N * I), T(1)), dx_ref = dx;
    kernels::index_select_backward<T>(dx.data(), g.data(), idx1.data(), O, N, I, M);
    kernels::index_select_backward_ref<T>(dx_ref.data(), g.data(), idx1.data(), O, N, I, M);
    CHECK(dx == dx_ref);  // same summation order: bit-equal
    kernels::gather_forward<T>(a.data(), x.data(), idx.data(), O, N, I, M);
    kernels::gather_forward_ref<T>(b.data(), x.data(), idx.data(), O, N, I, M);
    CHECK(a == b);
    std::vector<T> s = x, s_ref = x;
    kernels::scatter_add<T>(s.data(), idx.data(), g.data(), O, N, I, M);
    kernels::scatter_add_ref<T>(s_ref.data(), idx.data(), g.data(), O, N, I, M);
    CHECK(s == s_ref);
  }
}

}  // namespace

TEST_CASE("index kernels: fast == reference over awkward sizes (f32, f64, i64)") {
  Generator gen(11);
  int threads = get_num_threads();
  for (int nt : {1, 2}) {
    set_num_threads(nt);
    check_index_kernels<float>(gen);
    check_index_kernels<double>(gen);
    check_index_kernels<int64_t>(gen);
  }
  set_num_threads(threads);
  std::vector<int64_t> ids = {0, 3, 9, 10, 2};
  CHECK(kernels::find_bad_index(ids.data(), 5, 10) == 3);
  CHECK(kernels::find_bad_index(ids.data(), 3, 10) == -1);
}

TEST_CASE("embedding: rows by id, any strides, repeated ids accumulate in backward") {
  Generator gen(3);
  Tensor w = randn({10, 6}, gen, DType::f64);
  Tensor wn = non_contiguous(w);
  Tensor ids = from_vector(std::vector<int64_t>{4, 0, 9, 4, 4, 2}, {2, 3});
  for (const Tensor& ww : {w, wn}) {
    Tensor y = core::embedding(ww, ids);
    REQUIRE(y.shape() == Shape{2, 3, 6});
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t c = 0; c < 6; ++c) CHECK(y.at({a, b, c}) == w.at({int64_t(ids.at({a, b})), c}));
  }
  // Non-contiguous ids.
  Tensor ids_nc = non_contiguous(ids);
  CHECK(max_abs_diff(core::embedding(w, ids_nc), core::embedding(w, ids)) == 0);
  // Backward: row 4 appears three times.
  Tensor g = randn({2, 3, 6}, gen, DType::f64);
  Tensor dw = core::embedding_backward(non_contiguous(g.reshape({6, 6})).reshape({2, 3, 6}), ids, 10);
  REQUIRE(dw.shape() == Shape{10, 6});
  for (int64_t c = 0; c < 6; ++c) {
    CHECK(dw.at({4, c}) == doctest::Approx(g.at({0, 0, c}) + g.at({1, 0, c}) + g.at({1, 1, c})));
    CHECK(dw.at({0, c}) == g.at({0, 1, c}));
    CHECK(dw.at({1, c}) == 0);
  }
  // Empty ids and a 0-d id.
  CHECK(core::embedding(w, from_vector(std::vector<int64_t>{}, {0})).shape() == Shape{0, 6});
  CHECK(core::embedding(w, scalar_tensor(3, DType::i64)).shape() == Shape{6});
}

TEST_CASE("embedding backward is deterministic across thread counts") {
  Generator gen(5);
  const int64_t V = 50, C = 700, N = 3000;  // many repeated ids
  Tensor ids = randint(0, V, {N}, gen);
  Tensor g = randn({N, C}, gen, DType::f32);
  int threads = get_num_threads();
  set_num_threads(1);
  Tensor a = core::embedding_backward(g, ids, V);
  set_num_threads(2);
  Tensor b = core::embedding_backward(g, ids, V);
  set_num_threads(threads);
  CHECK(max_abs_diff(a, b) == 0);
  // And equal (within rounding) to a plain f64 loop.
  std::vector<double> ref(size_t(V * C), 0.0);
  std::vector<double> gv = g.to_vector<double>();
  std::vector<int64_t> iv = ids.to_vector<int64_t>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) ref[size_t(iv[n] * C + c)] += gv[size_t(n * C + c)];
  CHECK_CLOSE(a, from_vector(ref, {V, C}), 1e-5);
}

TEST_CASE("embedding errors name the bad id and V") {
  Tensor w = zeros({10, 4});
  CHECK_THROWS_WITH_AS(core::embedding(w, from_vector(std::vector<int64_t>{1, 12, 3})),
                       doctest::Contains("id 12 out of range for a table of V = 10"), tz::Error);
  CHECK_THROWS_WITH_AS(core::embedding(w, from_vector(std::vector<int64_t>{-1})), doctest::Contains("id -1"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(core::embedding(w, tensor({1, 2})), doctest::Contains("i64"), tz::Error);
  CHECK_THROWS_WITH_AS(core::embedding(zeros({10}), from_vector(std::vector<int64_t>{1})), doctest::Contains("[V, C]"),
                       tz::Error);
}

TEST_CASE("index_select: any dim (negative too), non-contiguous x and index, i64 data") {
  Generator gen(8);
  Tensor x = randn({4, 5, 3}, gen, DType::f64);
  Tensor idx = from_vector(std::vector<int64_t>{2, 2, 0, 4, 1, 2});
  for (const Tensor& xx : {x, non_contiguous(x)}) {
    for (const Tensor& ii : {idx, non_contiguous(idx)}) {
      Tensor y = core::index_select(xx, -2, ii);
      REQUIRE(y.shape() == Shape{4, 6, 3});
      for (int64_t a = 0; a < 4; ++a)
        for (int64_t m = 0; m < 6; ++m)
          for (int64_t c = 0; c < 3; ++c) CHECK(y.at({a, m, c}) == x.at({a, int64_t(idx.at({m})), c}));
    }
  }
  Tensor y0 = core::index_select(x, 0, from_vector(std::vector<int64_t>{3, 1}));
  CHECK(max_abs_diff(y0.select(0, 0), x.select(0, 3)) == 0);
  Tensor xi = arange(12).reshape({3, 4});
  Tensor yi = core::index_select(xi, 1, from_vector(std::vector<int64_t>{3, 0}));
  CHECK(yi.dtype() == DType::i64);
  CHECK(yi.to_vector<int64_t>() == std::vector<int64_t>{3, 0, 7, 4, 11, 8});
  // Backward with repeated indices.
  Tensor g = ones({4, 6, 3}, DType::f64);
  Tensor dx = core::index_select_backward(g, x.shape(), 1, idx);
  CHECK(dx.at({0, 2, 0}) == 3);
  CHECK(dx.at({1, 3, 2}) == 0);
  CHECK(dx.at({3, 4, 1}) == 1);
  // Errors.
  CHECK_THROWS_WITH_AS(core::index_select(x, 1, from_vector(std::vector<int64_t>{0, 5})),
                       doctest::Contains("index 5 out of range [0, 5)"), tz::Error);
  CHECK_THROWS_WITH_AS(core::index_select(x, 1, tensor({0, 1})), doctest::Contains("i64"), tz::Error);
  CHECK_THROWS_WITH_AS(core::index_select(x, 3, idx), doctest::Contains("index_select"), tz::Error);
  CHECK_THROWS_WITH_AS(core::index_select(x, 0, zeros({2, 2}, DType::i64)), doctest::Contains("1-D"), tz::Error);
}

TEST_CASE("gather: PyTorch semantics, smaller index, non-contiguous inputs, i64 data") {
  Generator gen(9);
  Tensor x = randn({3, 5, 4}, gen, DType::f64);
  // index smaller than x in dims 0 and 2; gather along dim 1 (given as -2).
  Tensor idx = randint(0, 5, {2, 7, 3}, gen);
  for (const Tensor& xx : {x, non_contiguous(x)}) {
    Tensor y = core::gather(xx, -2, non_contiguous(idx));
    REQUIRE(y.shape() == Shape{2, 7, 3});
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t m = 0; m < 7; ++m)
        for (int64_t c = 0; c < 3; ++c) CHECK(y.at({a, m, c}) == x.at({a, int64_t(idx.at({a, m, c})), c}));
  }
  // Along the last dim of a 2-D i64 tensor.
  Tensor xi = arange(6).reshape({2, 3});
  Tensor yi = core::gather(xi, 1, from_vector(std::vector<int64_t>{2, 2, 0, 1}, {2, 2}));
  CHECK(yi.to_vector<int64_t>() == std::vector<int64_t>{2, 2, 3, 4});
  // Errors.
  CHECK_THROWS_WITH_AS(core::gather(x, 1, randint(0, 5, {3, 5}, gen)), doctest::Contains("rank"), tz::Error);
  CHECK_THROWS_WITH_AS(core::gather(x, 1, zeros({4, 1, 1}, DType::i64)), doctest::Contains("larger than x"), tz::Error);
  CHECK_THROWS_WITH_AS(core::gather(x, 1, full({1, 1, 1}, 5, DType::i64)),
                       doctest::Contains("index 5 out of range [0, 5)"), tz::Error);
  CHECK_THROWS_WITH_AS(core::gather(x, 1, zeros({1, 1, 1})), doctest::Contains("i64"), tz::Error);
}

TEST_CASE("scatter_add: x + scattered src, x untouched, smaller index, non-contiguous") {
  Generator gen(10);
  Tensor x = randn({3, 4, 5}, gen, DType::f64);
  Tensor x_copy = core::clone(x);
  Tensor src = randn({3, 6, 5}, gen, DType::f64);
  for (int64_t dim : {1, -2}) {
    // Full-size index (in dims other than 1), and a smaller one.
    for (Shape ishape : {Shape{3, 6, 5}, Shape{2, 3, 4}}) {
      Tensor idx = randint(0, 4, ishape, gen);
      Tensor y = core::scatter_add(non_contiguous(x), dim, non_contiguous(idx), non_contiguous(src));
      std::vector<double> ref = x.to_vector<double>();
      for (int64_t a = 0; a < ishape[0]; ++a)
        for (int64_t m = 0; m < ishape[1]; ++m)
          for (int64_t c = 0; c < ishape[2]; ++c)
            ref[size_t((a * 4 + int64_t(idx.at({a, m, c}))) * 5 + c)] += src.at({a, m, c});
      CHECK(max_abs_diff(y, from_vector(ref, {3, 4, 5})) <= 1e-12);
    }
  }
  CHECK(max_abs_diff(x, x_copy) == 0);  // not in place
  // Along dim 0 of a 1-D i64 tensor, with repeats.
  Tensor yi = core::scatter_add(zeros({3}, DType::i64), 0, from_vector(std::vector<int64_t>{2, 0, 2}),
                                from_vector(std::vector<int64_t>{5, 6, 7}));
  CHECK(yi.to_vector<int64_t>() == std::vector<int64_t>{6, 0, 12});
  // Errors.
  Tensor idx = zeros({3, 4, 5}, DType::i64);
  CHECK_THROWS_WITH_AS(core::scatter_add(x, 1, idx, src.to(DType::f32)), doctest::Contains("dtype"), tz::Error);
  CHECK_THROWS_WITH_AS(core::scatter_add(x, 1, zeros({3, 7, 5}, DType::i64), src), doctest::Contains("larger than src"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(core::scatter_add(x, 1, full({1, 1, 1}, 4, DType::i64), src),
                       doctest::Contains("index 4 out of range [0, 4)"), tz::Error);
  CHECK_THROWS_WITH_AS(core::scatter_add(x, 1, zeros({3, 4}, DType::i64), src), doctest::Contains("same rank"),
                       tz::Error);
}

TEST_CASE("cat: any dim, non-contiguous and empty pieces, i64 data") {
  Generator gen(12);
  Tensor a = randn({2, 3, 4}, gen, DType::f64), b = randn({2, 5, 4}, gen, DType::f64), e = zeros({2, 0, 4}, DType::f64);
  Tensor y = core::cat({a, non_contiguous(b), e}, -2);
  REQUIRE(y.shape() == Shape{2, 8, 4});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t t = 0; t < 8; ++t)
      for (int64_t c = 0; c < 4; ++c) CHECK(y.at({i, t, c}) == (t < 3 ? a.at({i, t, c}) : b.at({i, t - 3, c})));
  Tensor y0 = core::cat({a, a}, 0);
  CHECK(y0.shape() == Shape{4, 3, 4});
  CHECK(max_abs_diff(y0.narrow(0, 2, 2), a) == 0);
  Tensor yl = core::cat({non_contiguous(a), a}, 2);
  CHECK(max_abs_diff(yl.narrow(2, 4, 4), a) == 0);
  CHECK(max_abs_diff(yl.narrow(2, 0, 4), a) == 0);
  Tensor yi = core::cat({arange(3), arange(2)}, 0);
  CHECK(yi.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 0, 1});
  // A long cat (more than a parallel grain).
  Tensor big = randn({1000, 70}, gen, DType::f32);
  Tensor yb = core::cat({big, big.narrow(0, 0, 3)}, 0);
  CHECK(max_abs_diff(yb.narrow(0, 0, 1000), big) == 0);
  // Errors.
  CHECK_THROWS_WITH_AS(core::cat({a, b}, 0),
                       doctest::Contains("tensor 1 has shape [2, 5, 4] but tensor 0 has shape [2, 3, 4]"), tz::Error);
  CHECK_THROWS_WITH_AS(core::cat({a, a.to(DType::f32)}, 1), doctest::Contains("dtype"), tz::Error);
  CHECK_THROWS_WITH_AS(core::cat({a, zeros({2, 3}, DType::f64)}, 1), doctest::Contains("shape"), tz::Error);
  CHECK_THROWS_WITH_AS(core::cat({}, 0), doctest::Contains("at least one"), tz::Error);
  CHECK_THROWS_WITH_AS(core::cat({a}, 3), doctest::Contains("cat"), tz::Error);
}

}  // namespace tz::testing
