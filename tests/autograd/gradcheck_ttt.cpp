// Gradcheck cases (f64) for the fused TTT-Linear op; the loss reaches all four results (the
// outputs, the final weights and the inner losses).
#include "autograd/ops.h"
#include "tests/autograd/gradcheck_cases.h"

namespace tz::testing {
namespace {
Tensor all(const TttLinearResult& r) {
  return cat({r.z.reshape({-1}), r.W.reshape({-1}), r.b.reshape({-1}), r.loss.reshape({-1})}, 0);
}
}  // namespace

TZ_GRADCHECK_CASE(ttt_linear, "mini-batch 2 over T 5, shared W0: q, k, v [2, 1, 5, 3]") {
  return GradcheckCase{[](auto& x) {
                         return all(ttt_linear({x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], 2}));
                       },
                       {leaf({2, 1, 5, 3}, 181), leaf({2, 1, 5, 3}, 182), leaf({2, 1, 5, 3}, 183),
                        leaf({2, 1, 5, 1}, 184, 0.1, 0.3), leaf({1, 1, 3, 3}, 185, 0.5), leaf({1, 1, 1, 3}, 186, 0.3),
                        leaf({1, 1, 1, 3}, 187, 0.2, 1.0), leaf({1, 1, 1, 3}, 188, 0.2)}};
}
TZ_GRADCHECK_CASE(ttt_linear, "mini-batch 3 over T 3, W0 per batch row, 2 heads: q, k, v [2, 2, 3, 2]") {
  return GradcheckCase{[](auto& x) {
                         return all(ttt_linear({x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], 3}));
                       },
                       {leaf({2, 2, 3, 2}, 191), leaf({2, 2, 3, 2}, 192), leaf({2, 2, 3, 2}, 193),
                        leaf({2, 2, 3, 1}, 194, 0.1, 0.3), leaf({2, 2, 2, 2}, 195, 0.5), leaf({2, 2, 1, 2}, 196, 0.3),
                        leaf({1, 2, 1, 2}, 197, 0.2, 1.0), leaf({1, 2, 1, 2}, 198, 0.2)}};
}
}  // namespace tz::testing
