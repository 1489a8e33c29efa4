// Gradcheck cases (f64) for the fused attention op.
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
TZ_GRADCHECK_CASE(attention, "causal q, k, v [1, 2, 5, 3]") {
  return GradcheckCase{[](auto& x) { return tz::attention(x[0], x[1], x[2], true); },
                       {leaf({1, 2, 5, 3}, 41), leaf({1, 2, 5, 3}, 42), leaf({1, 2, 5, 3}, 43)}};
}
TZ_GRADCHECK_CASE(attention, "causal with q_offset 4: q [2, 1, 3, 4], k, v [2, 1, 7, 4], scale 0.7") {
  return GradcheckCase{[](auto& x) { return tz::attention(x[0], x[1], x[2], true, 4, 0.7); },
                       {leaf({2, 1, 3, 4}, 44), leaf({2, 1, 7, 4}, 45), leaf({2, 1, 7, 4}, 46)}};
}
TZ_GRADCHECK_CASE(attention, "not causal, non-contiguous q [1, 2, 4, 3], k, v [1, 2, 6, 3]") {
  return GradcheckCase{[](auto& x) { return tz::attention(x[0], x[1], x[2], false); },
                       {nc_leaf({1, 2, 4, 3}, 47), leaf({1, 2, 6, 3}, 48), nc_leaf({1, 2, 6, 3}, 49)}};
}
}  // namespace tz::testing
