// The tensor: geometry, views sharing storage, creation, printing, random numbers, errors.
#include <algorithm>
#include <atomic>
#include <set>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/test_util.h"

using namespace tz;
using tz::testing::rel_rms;

TEST_CASE("contiguous tensors: shape, strides, element access") {
  Tensor t = arange(0.0, 24.0, 1.0, DType::f32).view({2, 3, 4});
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.is_contiguous());
  CHECK(t.numel() == 24);
  CHECK(t.at({1, 2, 3}) == 23);
  CHECK(t.at({-1, 0, -1}) == 15);
  t.set({0, 0, 1}, 42);
  CHECK(t.data<float>()[1] == 42.0f);
  CHECK_THROWS_WITH_AS(t.at({2, 0, 0}), "at: index 2 out of range for dim 0 of size 2", Error);
  CHECK_THROWS_AS(t.data<double>(), Error);
}

TEST_CASE("views share storage and never copy") {
  Tensor base = arange(0.0, 24.0, 1.0, DType::f64).view({2, 3, 4});
  SUBCASE("permute / transpose") {
    Tensor p = base.permute({2, 0, 1});
    CHECK(p.shares_storage(base));
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK_FALSE(p.is_contiguous());
    CHECK(p.at({3, 1, 2}) == base.at({1, 2, 3}));
    Tensor t = base.transpose(0, 2);
    CHECK(t.at({3, 2, 1}) == base.at({1, 2, 3}));
    CHECK_THROWS_WITH_AS(base.permute({0, 0, 1}), "permute: dim 0 repeated in [0, 0, 1]", Error);
  }
  SUBCASE("0-d tensors view as any shape of one element, and back") {
    Tensor s = sum(base.narrow(0, 0, 1).narrow(1, 0, 1).narrow(2, 0, 1));
    CHECK(s.dim() == 0);
    CHECK(s.view({1, 1}).shape() == Shape{1, 1});
    CHECK(s.reshape({1}).item() == 0.0);
    CHECK(s.reshape({1}).reshape({}).dim() == 0);
  }
  SUBCASE("narrow / slice / select") {
    Tensor n = base.narrow(2, 1, 2);
    CHECK(n.shape() == Shape{2, 3, 2});
    CHECK(n.shares_storage(base));
    CHECK(n.at({1, 1, 0}) == base.at({1, 1, 1}));
    Tensor s = base.slice(2, 0, 4, 2);
    CHECK(s.shape() == Shape{2, 3, 2});
    CHECK(s.at({0, 2, 1}) == base.at({0, 2, 2}));
    Tensor neg = base.slice(1, -2, 100);  // Python-style bounds
    CHECK(neg.shape() == Shape{2, 2, 4});
    Tensor sel = base.select(1, -1);
    CHECK(sel.shape() == Shape{2, 4});
    CHECK(sel.at({1, 3}) == base.at({1, 2, 3}));
    CHECK_THROWS_WITH_AS(base.narrow(0, 1, 5),
                         "narrow: range [1, 6) out of bounds for dim 0 of size 2 (shape [2, 3, 4])", Error);
  }
  SUBCASE("squeeze / unsqueeze / expand") {
    Tensor u = base.unsqueeze(1);
    CHECK(u.shape() == Shape{2, 1, 3, 4});
    CHECK(u.squeeze(1).shape() == base.shape());
    CHECK(base.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
    Tensor e = base.select(0, 0).select(0, 0).unsqueeze(0).expand({5, 4});
    CHECK(e.shape() == Shape{5, 4});
    CHECK(e.strides()[0] == 0);
    CHECK(e.at({4, 2}) == 2);
    CHECK_THROWS_AS(base.expand({2, 5, 4}), Error);
    CHECK_THROWS_WITH_AS(base.squeeze(0), "squeeze: dim 0 has size 2, expected 1 (shape [2, 3, 4])", Error);
  }
  SUBCASE("view needs compatible strides, reshape copies when it must") {
    Tensor v = base.view({6, -1});
    CHECK(v.shape() == Shape{6, 4});
    CHECK(v.shares_storage(base));
    Tensor t = base.transpose(1, 2);  // [2, 4, 3], not viewable as [8, 3]
    CHECK_THROWS_AS(t.view({8, 3}), Error);
    Tensor r = t.reshape({8, 3});
    CHECK_FALSE(r.shares_storage(base));
    CHECK(r.at({1, 0}) == base.at({0, 0, 1}));
    CHECK(t.reshape({2, 12}).shape() == Shape{2, 12});
    CHECK(base.flatten().shape() == Shape{24});
    CHECK(base.flatten(1).shape() == Shape{2, 12});
    CHECK_THROWS_WITH_AS(base.view({5, -1}), "view: shape [5, -1] is invalid for 24 elements", Error);
  }
  SUBCASE("writes through a view are seen by the base") {
    base.transpose(0, 1).set({2, 1, 3}, -7);
    CHECK(base.at({1, 2, 3}) == -7);
  }
}

TEST_CASE("contiguous, clone and dtype conversion") {
  Tensor base = arange(0.0, 12.0, 1.0, DType::f32).view({3, 4});
  Tensor t = base.t();
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK_FALSE(c.shares_storage(base));
  CHECK(c.to_vector<float>() == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK(base.contiguous().shares_storage(base));
  Tensor k = base.clone();
  CHECK_FALSE(k.shares_storage(base));
  Tensor d = t.to(DType::f64);
  CHECK(d.dtype() == DType::f64);
  CHECK(d.at({3, 2}) == 11.0);
  Tensor i = tensor({1.7, -2.2}).to(DType::i64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{1, -2});
}

TEST_CASE("creation") {
  CHECK(zeros({2, 3}).to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(ones({4}, DType::f64).to_vector<double>() == std::vector<double>(4, 1.0));
  CHECK(full({2}, 3.5).to_vector<float>() == std::vector<float>{3.5f, 3.5f});
  CHECK(arange(5).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(1.0, 2.0, 0.25).numel() == 4);
  CHECK(arange(3.0, 0.0, -1.0).to_vector<float>() == std::vector<float>{3, 2, 1});
  CHECK(linspace(0, 1, 5, DType::f64).to_vector<double>() == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
  CHECK(linspace(2, 3, 1).to_vector<float>() == std::vector<float>{3});
  Tensor e = eye(3);
  CHECK(e.at({1, 1}) == 1);
  CHECK(e.at({1, 2}) == 0);
  CHECK(from_vector(std::vector<int64_t>{1, 2, 3, 4}, {2, 2}).at({1, 0}) == 3);
  CHECK(tensor({1, 2, 3, 4, 5, 6}, {2, 3}).at({1, 2}) == 6);
  CHECK(scalar_tensor(2.5).dim() == 0);
  CHECK(scalar_tensor(2.5).item() == 2.5);
  CHECK_THROWS_WITH_AS(from_vector(std::vector<float>{1, 2, 3}, {2, 2}),
                       "from_vector: 3 values do not fill shape [2, 2]", Error);
  CHECK_THROWS_AS(zeros({1, 1, 1, 1, 1, 1, 1, 1, 1}), Error);  // more than 8 dims
  CHECK_THROWS_AS(zeros({-1}), Error);
  CHECK(zeros({0, 3}).numel() == 0);
}

TEST_CASE("printing is readable and truncated") {
  Tensor small = tensor({1, 2, 3, 4}, {2, 2});
  CHECK(small.str() == "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]], shape=[2, 2], dtype=f32)");
  Tensor big = arange(100);
  std::string s = big.str();
  CHECK(s.find("...") != std::string::npos);
  CHECK(s.find("99") != std::string::npos);
  CHECK(s.size() < 80);
  CHECK(Tensor().str() == "tensor(undefined)");
  CHECK(scalar_tensor(3, DType::i64).str() == "tensor(3, shape=[], dtype=i64)");
}

TEST_CASE("parallel_for: regions open above the grain only, a larger grain when sized for passive waiting") {
  const int saved = get_num_threads();
  const bool passive = passive_wait_sizing();
  set_num_threads(2);
  // Whether fn ran inside an OpenMP region for n items of cost 1.
  auto threaded = [](int64_t n) {
    std::atomic<int> inside{0};
    parallel_for(n, 1, [&](int64_t, int64_t) { inside += in_parallel_region() ? 1 : 0; });
    return inside.load() > 0;
  };
  set_passive_wait_sizing(false);
  CHECK(parallel_grain() == 32768);
  CHECK_FALSE(threaded(1000));
  const bool have_openmp = threaded(100000);
  set_passive_wait_sizing(true);
  CHECK(parallel_grain() == 524288);
  CHECK_FALSE(threaded(100000));            // worth waking a spinning thread, not a sleeping one
  CHECK(threaded(2000000) == have_openmp);  // two grains: one per thread
  set_passive_wait_sizing(passive);
  set_num_threads(saved);
}

TEST_CASE("copy_ and fill_ split one long run across threads, strided or not") {
  const int saved = get_num_threads();
  set_num_threads(2);
  const int64_t n = 300001;  // one run of well over the grain, odd so the split is uneven
  auto all_equal = [](const std::vector<double>& v, double x) {
    return std::all_of(v.begin(), v.end(), [&](double y) { return y == x; });
  };
  Tensor src = arange(0.0, double(n), 1.0, DType::f32);
  Tensor dst = empty({n}, DType::f32);
  core::copy_(dst, src);
  CHECK(dst.to_vector<float>() == src.to_vector<float>());
  core::fill_(dst, 2.5);
  CHECK(all_equal(dst.to_vector<double>(), 2.5));
  // A column of a [n, 3] matrix is one run of stride 3; the other columns stay untouched.
  Tensor m = zeros({n, 3}, DType::f64);
  core::fill_(m.select(1, 1), -1.0);
  core::copy_(m.select(1, 2), src);  // f32 -> f64 along a strided run
  CHECK(all_equal(m.select(1, 0).to_vector<double>(), 0.0));
  CHECK(all_equal(m.select(1, 1).to_vector<double>(), -1.0));
  CHECK(m.select(1, 2).to_vector<double>() == src.to_vector<double>());
  set_num_threads(saved);
}

TEST_CASE("random numbers are deterministic for a seed, on any thread count") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = randn({1000}, g1, DType::f64);
  int saved = get_num_threads();
  set_num_threads(1);
  Tensor b = randn({1000}, g2, DType::f64);
  set_num_threads(saved);
  CHECK(a.to_vector<double>() == b.to_vector<double>());
  CHECK(randn({1000}, g3, DType::f64).to_vector<double>() != a.to_vector<double>());
  // Consecutive draws continue the stream.
  CHECK(randn({10}, g1).to_vector<float>() != randn({10}, g3).to_vector<float>());
  CHECK(g1.counter() == 1010);

  Generator g(7);
  Tensor n = randn({200000}, g, DType::f64);
  std::vector<double> v = n.to_vector<double>();
  double mean = 0, sq = 0;
  for (double x : v) mean += x, sq += x * x;
  mean /= double(v.size());
  double var = sq / double(v.size()) - mean * mean;
  CHECK(std::abs(mean) < 0.01);
  CHECK(std::abs(var - 1) < 0.02);

  Tensor u = rand({100000}, g, DType::f32, -2, 3);
  for (float x : u.to_vector<float>()) REQUIRE((x >= -2 && x < 3));
  Tensor r = randint(3, 7, {1000}, g);
  std::set<int64_t> seen;
  for (int64_t x : r.to_vector<int64_t>()) {
    REQUIRE((x >= 3 && x < 7));
    seen.insert(x);
  }
  CHECK(seen.size() == 4);
  // The state can be saved and restored (checkpoints resume the stream exactly).
  Generator s(5);
  s.advance(17);
  Generator t;
  t.set_state(s.seed(), s.counter());
  CHECK(s.uniform() == t.uniform());
}

TEST_CASE("as_strided refuses views outside the storage") {
  Tensor base = zeros({4});
  CHECK_THROWS_AS(as_strided(base, {3}, {2}, 0), Error);
  CHECK(as_strided(base, {2}, {2}, 1).numel() == 2);
  CHECK(as_strided(base, {0}, {1}, 4).numel() == 0);
}

TEST_CASE("copy_ broadcasts and converts, fill_ writes any strides") {
  Tensor dst = zeros({2, 3}, DType::f64);
  core::copy_(dst, tensor({1, 2, 3}, DType::f32));
  CHECK(dst.to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  CHECK_THROWS_AS(core::copy_(dst, zeros({4})), Error);
  core::fill_(dst.t(), 9);
  CHECK(dst.to_vector<double>() == std::vector<double>(6, 9));
}

TEST_CASE("uninitialised memory is NaN in the test build") {
  CHECK(fill_uninitialized());
  Tensor t = empty({3});
  CHECK(std::isnan(t.at({0})));
}

TEST_CASE("absurd sizes are a tz::Error naming the shape or the bytes, never a crash or an exit") {
  CHECK_THROWS_WITH_AS(zeros({int64_t(1) << 62}),
                       "shape [4611686018427387904]: more than 2^59 elements, larger than any tensor can be", Error);
  CHECK_THROWS_WITH_AS(randn({int64_t(1) << 62}), doctest::Contains("more than 2^59 elements"), Error);
  CHECK_THROWS_WITH_AS(zeros({int64_t(1) << 32, int64_t(1) << 32}), doctest::Contains("more than 2^59 elements"),
                       Error);
  CHECK_THROWS_WITH_AS(zeros({int64_t(1) << 31, int64_t(1) << 31, 4}), doctest::Contains("more than 2^59"), Error);
  CHECK_THROWS_WITH_AS(zeros({3, -2}), doctest::Contains("negative"), Error);
  // 4 TiB: more than the machine has; the allocator's failure is an error with the byte count.
  CHECK_THROWS_WITH_AS(zeros({int64_t(1) << 40}), "out of memory allocating 4398046511104 bytes", Error);
  // A view cannot be shaped past the limit either (its element count would wrap to a match).
  Tensor t = zeros({0});
  CHECK_THROWS_AS(t.reshape({int64_t(1) << 32, int64_t(1) << 32, 0}), Error);
}
