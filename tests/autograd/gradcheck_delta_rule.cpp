// Gradcheck cases (f64) for the delta-rule op, chunked and recurrent, with an initial state;
// the loss reaches both results: the output and the final state.
#include "autograd/ops.h"
#include "tests/autograd/gradcheck_cases.h"

namespace tz::testing {
namespace {
Tensor both(const DeltaRuleResult& r) { return cat({r.out.reshape({-1}), r.state.reshape({-1})}, 0); }
}  // namespace

TZ_GRADCHECK_CASE(delta_rule, "chunked (chunk 2), h0: q, k [1, 2, 5, 3], v [1, 2, 5, 2], beta [1, 2, 5]") {
  return GradcheckCase{[](auto& x) { return both(delta_rule(x[0], x[1], x[2], x[3], {.h0 = x[4], .chunk = 2})); },
                       {leaf({1, 2, 5, 3}, 171), leaf({1, 2, 5, 3}, 172, 0.5), leaf({1, 2, 5, 2}, 173),
                        leaf({1, 2, 5}, 174, 0.2, 0.5), leaf({1, 2, 3, 2}, 175)}};
}
TZ_GRADCHECK_CASE(delta_rule, "recurrent, no h0: q, k [2, 1, 4, 3], v [2, 1, 4, 2]") {
  return GradcheckCase{
      [](auto& x) { return both(delta_rule(x[0], x[1], x[2], x[3], {.form = LinearAttentionForm::recurrent})); },
      {leaf({2, 1, 4, 3}, 176), leaf({2, 1, 4, 3}, 177, 0.5), leaf({2, 1, 4, 2}, 178), leaf({2, 1, 4}, 179, 0.2, 0.5)}};
}
}  // namespace tz::testing
