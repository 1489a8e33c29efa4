// Learning-rate schedules and gradient clipping.
#include <cmath>
#include <numbers>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/tensor.h"
#include "optim/optim.h"
#include "tests/test_util.h"

using namespace tz;
using namespace tz::optim;

TEST_SUITE("optim") {
  TEST_CASE("constant schedule") {
    ConstantLR c(3e-4);
    CHECK(c.lr_at(0) == 3e-4);
    CHECK(c.lr_at(1000000) == 3e-4);
    CHECK(constant(5, 0.1) == 0.1);
    CHECK_THROWS_AS(ConstantLR(-1), tz::Error);
    CHECK_THROWS_AS(c.lr_at(-1), tz::Error);
  }

  TEST_CASE("warmup_cosine: 0 at start, max_lr at the end of warm-up, midpoint, min_lr after") {
    WarmupCosine s(100, 1100, 1e-3, 1e-4);
    CHECK(s.lr_at(0) == 0.0);
    CHECK(s.lr_at(50) == doctest::Approx(5e-4).epsilon(1e-14));
    CHECK(s.lr_at(100) == doctest::Approx(1e-3).epsilon(1e-14));    // warm-up end = peak
    CHECK(s.lr_at(600) == doctest::Approx(5.5e-4).epsilon(1e-14));  // cosine midpoint
    double quarter = 1e-4 + 0.9e-3 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25));
    CHECK(s.lr_at(350) == doctest::Approx(quarter).epsilon(1e-14));
    CHECK(s.lr_at(1100) == doctest::Approx(1e-4).epsilon(1e-14));               // end
    CHECK(s.lr_at(5000) == 1e-4);                                               // after the end
    for (int64_t t = 101; t <= 1100; ++t) CHECK(s.lr_at(t) <= s.lr_at(t - 1));  // decreasing
    CHECK(warmup_cosine(600, 100, 1100, 1e-3, 1e-4) == s.lr_at(600));
    // No warm-up: starts at max_lr.
    CHECK(warmup_cosine(0, 0, 10, 1.0, 0.0) == 1.0);
    CHECK(warmup_cosine(5, 0, 10, 1.0, 0.0) == doctest::Approx(0.5));
  }

  TEST_CASE("warmup_cosine rejects bad arguments") {
    CHECK_THROWS_AS(WarmupCosine(-1, 10, 1, 0), tz::Error);
    CHECK_THROWS_AS(WarmupCosine(20, 10, 1, 0), tz::Error);  // total < warmup
    CHECK_THROWS_AS(WarmupCosine(1, 10, 1, 2), tz::Error);   // min > max
    CHECK_THROWS_AS(WarmupCosine(1, 10, 1, -1), tz::Error);
    CHECK_THROWS_AS(WarmupCosine(1, 10, NAN, 0), tz::Error);
    CHECK_THROWS_AS(warmup_cosine(-1, 1, 10, 1, 0), tz::Error);
  }

  TEST_CASE("schedule drives an optimizer through set_lr") {
    Tensor p = zeros({2});
    SGD opt({{"p", p}}, SGDOptions{.lr = 0});
    WarmupCosine s(2, 4, 1.0, 0.0);
    std::vector<double> seen;
    for (int i = 0; i < 5; ++i) {
      opt.set_lr(s.lr_at(opt.step_count()));
      seen.push_back(opt.lr());
      p.set_grad(ones({2}));
      opt.step();
    }
    CHECK(seen[0] == 0.0);
    CHECK(seen[1] == 0.5);
    CHECK(seen[2] == 1.0);
    CHECK(seen[3] == doctest::Approx(0.5));
    CHECK(seen[4] == 0.0);
  }

  TEST_CASE("clip_grad_norm: global norm, scaling above max_norm, no-op below") {
    Tensor a = zeros({2, 2}, DType::f64), b = zeros({3}, DType::f32), c = zeros({4});
    a.set_grad(from_vector(std::vector<double>{3, 0, 0, 4}, {2, 2}));  // norm 5
    b.set_grad(from_vector(std::vector<float>{0, 12, 0}));             // norm 12 -> total 13
    // c has no gradient: skipped.
    double norm = clip_grad_norm({a, b, c}, 1.0);
    CHECK(norm == doctest::Approx(13.0).epsilon(1e-15));
    double f = 1.0 / (13.0 + 1e-6);
    CHECK(testing::rel_rms(a.grad(), from_vector(std::vector<double>{3 * f, 0, 0, 4 * f}, {2, 2})) <= 1e-15);
    CHECK(b.grad().at({1}) == doctest::Approx(12 * f).epsilon(1e-7));
    // Now the norm is just below 1 (PyTorch's factor max_norm / (norm + 1e-6) would still
    // shave off 1e-6 at max_norm = 1); at max_norm = 1.5 nothing changes.
    std::vector<double> before = a.grad().to_vector<double>();
    double norm2 = clip_grad_norm({a, b, c}, 1.5);
    CHECK(norm2 == doctest::Approx(13.0 * f).epsilon(1e-7));
    CHECK(a.grad().to_vector<double>() == before);
    // Well below max_norm: untouched.
    a.set_grad(from_vector(std::vector<double>{0.1, 0.2, 0.3, 0.4}, {2, 2}));
    CHECK(clip_grad_norm({a}, 10.0) == doctest::Approx(std::sqrt(0.3)).epsilon(1e-15));
    CHECK(a.grad().to_vector<double>() == std::vector<double>{0.1, 0.2, 0.3, 0.4});
    CHECK(clip_grad_norm({}, 1.0) == 0.0);
    CHECK_THROWS_AS(clip_grad_norm({a}, -1.0), tz::Error);
  }

  TEST_CASE("clip_grad_norm: large f32 gradients, strided gradients, NaN and Inf") {
    Tensor big = zeros({100003});
    big.set_grad(full({100003}, 2.0f));
    double norm = clip_grad_norm({big}, 1.0);
    CHECK(norm == doctest::Approx(2.0 * std::sqrt(100003.0)).epsilon(1e-12));
    double total = 0;
    for (float g : big.grad().to_vector<float>()) total += double(g) * g;
    CHECK(std::sqrt(total) == doctest::Approx(1.0).epsilon(1e-5));

    Tensor s = zeros({2, 2}, DType::f64);
    s.set_grad(testing::non_contiguous(from_vector(std::vector<double>{6, 0, 0, 8}, {2, 2})));
    CHECK(clip_grad_norm({s}, 5.0) == doctest::Approx(10.0));
    CHECK(s.grad().at({1, 1}) == doctest::Approx(8 * 5.0 / (10.0 + 1e-6)));

    Tensor n = zeros({3}, DType::f64), ok = zeros({1}, DType::f64);
    n.set_grad(from_vector(std::vector<double>{1, NAN, 2}));
    ok.set_grad(from_vector(std::vector<double>{100}));
    CHECK(std::isnan(clip_grad_norm({n, ok}, 1.0)));
    CHECK(ok.grad().item() == 100);  // not scaled
    n.set_grad(from_vector(std::vector<double>{1, INFINITY, 2}));
    CHECK(std::isinf(clip_grad_norm({n, ok}, 1.0)));
    CHECK(ok.grad().item() == 100);
  }

}  // TEST_SUITE
