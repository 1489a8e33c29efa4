// Gradcheck cases for the views and copies of autograd/ops_views.cpp.
#include "autograd/ops.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
TZ_GRADCHECK_CASE(view, "[2,3,4] -> [6,4] -> [4,6]") {
  return {[](In x) { return x[0].view({6, 4}).view({4, -1}); }, {leaf({2, 3, 4})}};
}
TZ_GRADCHECK_CASE(view, "reshape of a non-contiguous input copies then views") {
  return {[](In x) { return x[0].reshape({12}); }, {non_contiguous(leaf({3, 4})).requires_grad_()}};
}
TZ_GRADCHECK_CASE(permute, "[2,3,4] permuted (2,0,1)") {
  return {[](In x) { return x[0].permute({2, 0, 1}); }, {leaf({2, 3, 4})}};
}
TZ_GRADCHECK_CASE(slice, "slice with a step, and narrow") {
  return {[](In x) { return x[0].slice(1, 1, 6, 2).narrow(0, 1, 2); }, {leaf({3, 7})}};
}
TZ_GRADCHECK_CASE(select, "select a row and a column") {
  return {[](In x) { return x[0].select(0, 1).select(0, -1); }, {leaf({3, 4, 2})}};
}
TZ_GRADCHECK_CASE(unsqueeze, "unsqueeze at the end") {
  return {[](In x) { return x[0].unsqueeze(-1); }, {leaf({3, 2})}};
}
TZ_GRADCHECK_CASE(squeeze, "squeeze a size-1 dim") {
  return {[](In x) { return x[0].squeeze(1); }, {leaf({3, 1, 2})}};
}
TZ_GRADCHECK_CASE(expand, "expand [3,1] to [2,3,4]: gradients are summed") {
  return {[](In x) { return x[0].expand({2, 3, 4}); }, {leaf({3, 1})}};
}
TZ_GRADCHECK_CASE(contiguous, "contiguous copy of a transpose") {
  return {[](In x) { return x[0].t().contiguous(); }, {leaf({3, 4})}};
}
TZ_GRADCHECK_CASE(clone, "clone") {
  return {[](In x) { return x[0].clone(); }, {leaf({5})}};
}
TZ_GRADCHECK_CASE(cast, "f64 -> f32 -> f64 round trip") {
  GradcheckCase c{[](In x) { return x[0].to(DType::f32).to(DType::f64); }, {leaf({4})}};
  c.options.atol = 1e-3;  // f32 rounding inside
  c.options.eps = 1e-3;
  return c;
}
}  // namespace tz::testing
