// Fused optimizer kernels (core/kernels/optim.cpp) against their plain references, in f32
// over sizes that exercise a single element, a tail, one chunk and the threaded path.
#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/kernels/optim.h"
#include "core/parallel.h"
#include "core/random.h"
#include "tests/test_util.h"

using namespace tz;

namespace {

const int64_t kSizes[] = {1, 7, 1000, 100003};

std::vector<float> random_vec(int64_t n, Generator& gen, double scale = 1.0, bool positive = false) {
  std::vector<float> v =
      (positive ? rand({n}, gen, DType::f32, 0, scale) : randn({n}, gen, DType::f32, 0, scale)).to_vector<float>();
  return v;
}

// Max relative difference |a - b| / max(|b|, floor); +inf on NaN.
double max_rel(const std::vector<float>& a, const std::vector<float>& b, double floor = 1e-3) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = std::abs(double(a[i]) - double(b[i])) / std::max(std::abs(double(b[i])), floor);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// Runs `fast` and `ref` on identical copies of (p, m, v) for 3 steps with fresh gradients,
// comparing all three buffers after each.
template <class Fast, class Ref>
void compare(int64_t n, Fast fast, Ref ref, double tol) {
  Generator gen(uint64_t(n) * 31 + 1);
  std::vector<float> p = random_vec(n, gen), m = random_vec(n, gen, 0.1), v = random_vec(n, gen, 0.01, true);
  std::vector<float> p2 = p, m2 = m, v2 = v;
  for (int t = 1; t <= 3; ++t) {
    CAPTURE(t);
    std::vector<float> g = random_vec(n, gen);
    if (n > 3) g[3] = 0.0f;  // a zero gradient (Lion's sign(0), Adam's v near 0)
    fast(p.data(), m.data(), v.data(), g.data(), n, t);
    ref(p2.data(), m2.data(), v2.data(), g.data(), n, t);
    CHECK(max_rel(p, p2) <= tol);
    CHECK(max_rel(m, m2) <= tol);
    CHECK(max_rel(v, v2, 1e-6) <= tol);
  }
}

}  // namespace

TEST_SUITE("optim") {
  TEST_CASE("fused optimizer kernels match their references (f32, AVX2 path and scalar path)") {
    const bool simd_was = simd_enabled();
    for (bool simd : {true, false})
      for (int64_t n : kSizes) {
        CAPTURE(n);
        CAPTURE(simd);
        set_simd_enabled(simd && simd_was);
        const double tol = 2e-6;  // a few f32 roundings: the fast loop rearranges the formula
        SUBCASE("adam") {
          auto bc = [](double b, int t) { return 1 - std::pow(b, t); };
          compare(
              n,
              [&](float* p, float* m, float* v, const float* g, int64_t N, int t) {
                kernels::adam_update<float>(p, m, v, g, N, 1e-3, 0.9, 0.999, 1e-8, 0.01, bc(0.9, t), bc(0.999, t));
              },
              [&](float* p, float* m, float* v, const float* g, int64_t N, int t) {
                kernels::adam_update_ref<float>(p, m, v, g, N, 1e-3, 0.9, 0.999, 1e-8, 0.01, bc(0.9, t), bc(0.999, t));
              },
              tol);
        }
        SUBCASE("adamw") {
          auto bc = [](double b, int t) { return 1 - std::pow(b, t); };
          compare(
              n,
              [&](float* p, float* m, float* v, const float* g, int64_t N, int t) {
                kernels::adamw_update<float>(p, m, v, g, N, 3e-4, 0.9, 0.95, 1e-8, 0.1, bc(0.9, t), bc(0.95, t));
              },
              [&](float* p, float* m, float* v, const float* g, int64_t N, int t) {
                kernels::adamw_update_ref<float>(p, m, v, g, N, 3e-4, 0.9, 0.95, 1e-8, 0.1, bc(0.9, t), bc(0.95, t));
              },
              tol);
        }
        SUBCASE("sgd nesterov with decay") {
          compare(
              n,
              [&](float* p, float* m, float*, const float* g, int64_t N, int t) {
                kernels::sgd_update<float>(p, m, g, N, 0.1, 0.9, 0.0, true, 1e-2, t == 1);
              },
              [&](float* p, float* m, float*, const float* g, int64_t N, int t) {
                kernels::sgd_update_ref<float>(p, m, g, N, 0.1, 0.9, 0.0, true, 1e-2, t == 1);
              },
              tol);
        }
        SUBCASE("sgd momentum with dampening") {
          compare(
              n,
              [&](float* p, float* m, float*, const float* g, int64_t N, int t) {
                kernels::sgd_update<float>(p, m, g, N, 0.1, 0.9, 0.2, false, 0.0, t == 1);
              },
              [&](float* p, float* m, float*, const float* g, int64_t N, int t) {
                kernels::sgd_update_ref<float>(p, m, g, N, 0.1, 0.9, 0.2, false, 0.0, t == 1);
              },
              tol);
        }
        SUBCASE("sgd plain (no momentum buffer)") {
          compare(
              n,
              [&](float* p, float*, float*, const float* g, int64_t N, int) {
                kernels::sgd_update<float>(p, nullptr, g, N, 0.1, 0.0, 0.0, false, 0.1, false);
              },
              [&](float* p, float*, float*, const float* g, int64_t N, int) {
                kernels::sgd_update_ref<float>(p, nullptr, g, N, 0.1, 0.0, 0.0, false, 0.1, false);
              },
              tol);
        }
        SUBCASE("lion") {
          compare(
              n,
              [&](float* p, float* m, float*, const float* g, int64_t N, int) {
                kernels::lion_update<float>(p, m, g, N, 1e-4, 0.9, 0.99, 0.1);
              },
              [&](float* p, float* m, float*, const float* g, int64_t N, int) {
                kernels::lion_update_ref<float>(p, m, g, N, 1e-4, 0.9, 0.99, 0.1);
              },
              tol);
        }
      }
    set_simd_enabled(simd_was);
  }

  TEST_CASE("fused kernels in f64 agree with the references to rounding") {
    const int64_t n = 5003;
    Generator gen(8);
    std::vector<double> p = randn({n}, gen, DType::f64).to_vector<double>();
    std::vector<double> m(n, 0.0), v(n, 0.0), p2 = p, m2 = m, v2 = v;
    for (int t = 1; t <= 3; ++t) {
      std::vector<double> g = randn({n}, gen, DType::f64).to_vector<double>();
      double c1 = 1 - std::pow(0.9, t), c2 = 1 - std::pow(0.999, t);
      kernels::adamw_update<double>(p.data(), m.data(), v.data(), g.data(), n, 1e-3, 0.9, 0.999, 1e-8, 0.1, c1, c2);
      kernels::adamw_update_ref<double>(p2.data(), m2.data(), v2.data(), g.data(), n, 1e-3, 0.9, 0.999, 1e-8, 0.1, c1,
                                        c2);
    }
    CHECK(testing::rel_rms(from_vector(p), from_vector(p2)) <= 1e-14);
    CHECK(testing::rel_rms(from_vector(m), from_vector(m2)) <= 1e-14);
  }

  TEST_CASE("sum_squares accumulates in f64 and is independent of the thread count") {
    for (int64_t n : kSizes) {
      CAPTURE(n);
      Generator gen{uint64_t(n)};
      std::vector<float> x = random_vec(n, gen);
      double want = 0;
      for (float xi : x) want += double(xi) * double(xi);
      double got = kernels::sum_squares<float>(x.data(), n);
      CHECK(std::abs(got - want) <= 1e-12 * want);
      int threads = get_num_threads();
      set_num_threads(1);
      double serial = kernels::sum_squares<float>(x.data(), n);
      set_num_threads(threads);
      CHECK(serial == got);
    }
    CHECK(kernels::sum_squares<float>(nullptr, 0) == 0.0);
  }

}  // TEST_SUITE
