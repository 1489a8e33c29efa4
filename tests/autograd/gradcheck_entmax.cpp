// Gradcheck cases (f64) for entmax (autograd/ops_entmax.cpp): sparsemax, entmax15 and the
// bisection path, through rows with exact zeros and masked (-inf) entries; plus checks of the
// exact thresholds against closed forms.
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
// Scores spread wide enough that every row has zeros, but away from the kinks (where p_i
// changes from 0 to > 0 the function is not differentiable).
TZ_GRADCHECK_CASE(entmax, "sparsemax (alpha 2) on [3, 6]") {
  return GradcheckCase{[](auto& x) { return tz::entmax(x[0], 2.0); }, {leaf({3, 6}, 91, 1.5, 0)}};
}
TZ_GRADCHECK_CASE(entmax, "entmax15 (alpha 1.5) on [2, 2, 5], non-contiguous") {
  return GradcheckCase{[](auto& x) { return tz::entmax(x[0], 1.5); }, {nc_leaf({4, 5}, 92)}};
}
TZ_GRADCHECK_CASE(entmax, "bisection (alpha 1.3) on [3, 5]") {
  return GradcheckCase{[](auto& x) { return tz::entmax(x[0], 1.3); }, {leaf({3, 5}, 93, 2.0, 0)}};
}
TZ_GRADCHECK_CASE(entmax, "entmax15 with masked (-inf) keys") {
  Tensor mask = triu(ones({4, 4}, DType::i64), 1);
  return GradcheckCase{
      [mask](auto& x) { return tz::entmax(masked_fill(x[0], mask, -std::numeric_limits<double>::infinity()), 1.5); },
      {leaf({4, 4}, 94, 2.0, 0)}};
}

TEST_CASE("entmax: exact thresholds, rows sum to 1, sparsemax closed form, alpha -> 1 is softmax") {
  Generator gen(3);
  Tensor z = randn({5, 7}, gen, DType::f64, 0.0, 2.0);
  for (double alpha : {1.5, 2.0, 1.25, 3.0}) {
    Tensor p = entmax(z, alpha);
    for (int64_t r = 0; r < 5; ++r) {
      double s = 0;
      for (int64_t i = 0; i < 7; ++i) s += p.at({r, i});
      CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
    }
  }
  // sparsemax: p = max(z - tau, 0) with tau from the sorted cumulative sums.
  Tensor p = entmax(z, 2.0);
  for (int64_t r = 0; r < 5; ++r) {
    std::vector<double> v;
    for (int64_t i = 0; i < 7; ++i) v.push_back(z.at({r, i}));
    std::sort(v.rbegin(), v.rend());
    double cum = 0, tau = 0;
    for (size_t k = 1; k <= v.size(); ++k)
      if (1 + k * v[k - 1] > (cum += v[k - 1])) tau = (cum - 1) / k;
    for (int64_t i = 0; i < 7; ++i)
      CHECK(p.at({r, i}) == doctest::Approx(std::max(z.at({r, i}) - tau, 0.0)).epsilon(1e-12));
  }
  // The sort-based entmax15 agrees with the general bisection path near alpha = 1.5.
  CHECK(max_abs_diff(entmax(z, 1.5), entmax(z, 1.5 + 1e-9)) < 1e-6);
  CHECK(max_abs_diff(entmax(z, 1.0001), softmax(z)) < 1e-3);
}
}  // namespace tz::testing
