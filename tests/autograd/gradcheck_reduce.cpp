// Gradcheck cases (f64) for the reductions of ops.def, and autograd tests of sum_to and
// the index-returning reductions.
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/tensor.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
TZ_GRADCHECK_CASE(sum, "all dims of [3, 4]") {
  return GradcheckCase{[](auto& x) { return tz::sum(x[0]); }, {leaf({3, 4}, 1)}};
}
TZ_GRADCHECK_CASE(sum, "dim 1 keepdim of a non-contiguous [3, 4, 2]") {
  return GradcheckCase{[](auto& x) { return tz::sum(x[0], {1}, true); }, {nc_leaf({3, 4, 2}, 2)}};
}
TZ_GRADCHECK_CASE(sum, "non-adjacent dims {0, 2} of [2, 3, 4]") {
  return GradcheckCase{[](auto& x) { return tz::sum(x[0], {0, 2}); }, {leaf({2, 3, 4}, 3)}};
}
TZ_GRADCHECK_CASE(sum, "sum_to [2, 3, 4] -> [3, 1]") {
  return GradcheckCase{[](auto& x) { return tz::sum_to(x[0], {3, 1}); }, {leaf({2, 3, 4}, 4)}};
}
TZ_GRADCHECK_CASE(mean, "last dim of [3, 5]") {
  return GradcheckCase{[](auto& x) { return tz::mean(x[0], {-1}); }, {leaf({3, 5}, 5)}};
}
TZ_GRADCHECK_CASE(mean, "dims {0, 2} keepdim (Tensor::mean)") {
  return GradcheckCase{[](auto& x) { return x[0].mean({0, 2}, true); }, {leaf({2, 3, 4}, 6)}};
}
TZ_GRADCHECK_CASE(mean, "all dims of a non-contiguous [3, 4]") {
  return GradcheckCase{[](auto& x) { return x[0].mean(); }, {nc_leaf({3, 4}, 17)}};
}
TZ_GRADCHECK_CASE(var, "dim 1, correction 1") {
  return GradcheckCase{[](auto& x) { return tz::var(x[0], 1); }, {leaf({3, 6}, 7)}};
}
TZ_GRADCHECK_CASE(var, "dim 0 of a non-contiguous tensor, correction 0, keepdim") {
  return GradcheckCase{[](auto& x) { return tz::var(x[0], 0, 0, true); }, {nc_leaf({4, 3}, 8)}};
}
TZ_GRADCHECK_CASE(max, "dim 1 of [4, 5]") {
  return GradcheckCase{[](auto& x) { return tz::max(x[0], 1); }, {leaf({4, 5}, 9)}};
}
TZ_GRADCHECK_CASE(max, "max_with_indices, dim 0 keepdim, non-contiguous") {
  return GradcheckCase{[](auto& x) { return tz::max_with_indices(x[0], 0, true).values; }, {nc_leaf({4, 3}, 10)}};
}
TZ_GRADCHECK_CASE(min, "dim -1 of [3, 2, 5]") {
  return GradcheckCase{[](auto& x) { return tz::min(x[0], -1); }, {leaf({3, 2, 5}, 11)}};
}
TZ_GRADCHECK_CASE(min, "min_with_indices, dim 1") {
  return GradcheckCase{[](auto& x) { return tz::min_with_indices(x[0], 1).values; }, {leaf({3, 4}, 12)}};
}
TZ_GRADCHECK_CASE(logsumexp, "last dim of [3, 7]") {
  return GradcheckCase{[](auto& x) { return tz::logsumexp(x[0], -1); }, {leaf({3, 7}, 13)}};
}
TZ_GRADCHECK_CASE(logsumexp, "dim 0 keepdim, large values (max-subtracted)") {
  Tensor x = leaf({5, 3}, 14, 30.0);
  return GradcheckCase{[](auto& x) { return tz::logsumexp(x[0], 0, true); }, {x}};
}
TZ_GRADCHECK_CASE(cumsum, "dim 1 of [3, 6]") {
  return GradcheckCase{[](auto& x) { return tz::cumsum(x[0], 1); }, {leaf({3, 6}, 15)}};
}
TZ_GRADCHECK_CASE(cumsum, "dim 0 of a non-contiguous [4, 3]") {
  return GradcheckCase{[](auto& x) { return tz::cumsum(x[0], 0); }, {nc_leaf({4, 3}, 16)}};
}

TEST_CASE("reductions in autograd: values, shapes, and gradients") {
  Tensor x = tensor({1, 5, 5, 2, 0, 7}, {2, 3}, DType::f64);
  x.requires_grad_();
  auto r = max_with_indices(x, 1);
  CHECK(r.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});
  r.values.sum().backward();
  // Ties: the gradient goes to the first maximum only.
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 0, 1});
  Tensor y = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32);
  y.requires_grad_();
  Tensor s = sum_to(y, {3});
  CHECK(s.to_vector<double>() == std::vector<double>{5, 7, 9});
  s.backward(ones({3}));
  CHECK(y.grad().to_vector<double>() == std::vector<double>(6, 1.0));
  CHECK(y.grad().dtype() == DType::f32);
  CHECK(sum_to(y, {2, 3}).shares_storage(y));
  Tensor m = y.mean({0});
  CHECK(m.to_vector<double>() == std::vector<double>{2.5, 3.5, 4.5});
}

}  // namespace tz::testing
