// Gradcheck cases (f64) for the fused NN ops of ops.def, and autograd tests of
// cross_entropy's ignore_index and dropout's mask reuse.
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
TZ_GRADCHECK_CASE(softmax, "last dim of [2, 3, 5]") {
  return GradcheckCase{[](auto& x) { return tz::softmax(x[0]); }, {leaf({2, 3, 5}, 21, 2, 0)}};
}
TZ_GRADCHECK_CASE(softmax, "non-contiguous [4, 3]") {
  return GradcheckCase{[](auto& x) { return tz::softmax(x[0]); }, {nc_leaf({4, 3}, 22)}};
}
TZ_GRADCHECK_CASE(log_softmax, "last dim of [3, 6], large values") {
  return GradcheckCase{[](auto& x) { return tz::log_softmax(x[0]); }, {leaf({3, 6}, 23, 3, 50)}};
}
TZ_GRADCHECK_CASE(log_softmax, "non-contiguous [5, 2]") {
  return GradcheckCase{[](auto& x) { return tz::log_softmax(x[0]); }, {nc_leaf({5, 2}, 24)}};
}
TZ_GRADCHECK_CASE(layer_norm, "x, weight, bias of [2, 3, 6]") {
  return GradcheckCase{[](auto& x) { return tz::layer_norm(x[0], x[1], x[2], 1e-5); },
                       {leaf({2, 3, 6}, 25, 2, 1), leaf({6}, 26), leaf({6}, 27)}};
}
TZ_GRADCHECK_CASE(layer_norm, "no weight or bias, non-contiguous x") {
  return GradcheckCase{[](auto& x) { return tz::layer_norm(x[0], Tensor(), Tensor(), 1e-5); }, {nc_leaf({4, 5}, 28)}};
}
TZ_GRADCHECK_CASE(rms_norm, "x and weight of [3, 7]") {
  return GradcheckCase{[](auto& x) { return tz::rms_norm(x[0], x[1], 1e-6); }, {leaf({3, 7}, 29), leaf({7}, 30)}};
}
TZ_GRADCHECK_CASE(rms_norm, "no weight, non-contiguous [2, 4, 3]") {
  return GradcheckCase{[](auto& x) { return tz::rms_norm(x[0], Tensor(), 1e-6); }, {nc_leaf({2, 4, 3}, 31)}};
}
TZ_GRADCHECK_CASE(cross_entropy, "logits [5, 7], one target ignored") {
  Tensor t = from_vector(std::vector<int64_t>{3, -100, 0, 6, 2});
  return GradcheckCase{[t](auto& x) { return tz::cross_entropy(x[0], t); }, {leaf({5, 7}, 32, 2, 0)}};
}
TZ_GRADCHECK_CASE(cross_entropy, "logits [2, 3, 4] (non-contiguous), ignore_index 1") {
  Tensor t = from_vector(std::vector<int64_t>{0, 1, 3, 2, 1, 1}, {2, 3});
  return GradcheckCase{[t](auto& x) { return tz::cross_entropy(x[0], t, 1); }, {nc_leaf({2, 3, 4}, 33)}};
}
TZ_GRADCHECK_CASE(dropout, "p = 0.4 on [6, 5], fresh Generator(7) each call") {
  return GradcheckCase{[](auto& x) {
                         Generator gen(7);
                         return tz::dropout(x[0], 0.4, true, gen);
                       },
                       {leaf({6, 5}, 34)}};
}

TEST_CASE("cross_entropy in autograd: all targets ignored gives 0 loss and 0 gradient") {
  Tensor x = randn({3, 4}, DType::f32);
  x.requires_grad_();
  Tensor loss = cross_entropy(x, full({3}, -100, DType::i64));
  CHECK(loss.item() == 0);
  loss.backward();
  CHECK(x.grad().defined());
  CHECK(max_abs_diff(x.grad(), zeros({3, 4})) == 0);
  // f32 gradient matches (softmax - onehot) / count.
  Tensor y = tensor({0, 0, 0, 0, 1, 2}, {2, 3}, DType::f32);
  y.requires_grad_();
  cross_entropy(y, from_vector(std::vector<int64_t>{1, 2})).backward();
  double e = std::exp(1.0), s = 1 + e + e * e;
  std::vector<double> want{1.0 / 6, 1.0 / 6 - 0.5, 1.0 / 6, 0.5 / s, 0.5 * e / s, 0.5 * e * e / s - 0.5};
  CHECK_CLOSE(y.grad(), from_vector(want, {2, 3}), 1e-6);
}

TEST_CASE("dropout in autograd: eval and p = 0 are the identity without a node") {
  Tensor x = randn({4, 4}, DType::f32);
  x.requires_grad_();
  Generator gen(3);
  CHECK(dropout(x, 0.5, false, gen).shares_storage(x));
  CHECK(dropout(x, 0.0, true, gen).shares_storage(x));
  Tensor y = dropout(x, 0.5, true, gen);
  CHECK(std::string(y.grad_fn_name()) == "dropout");
}

}  // namespace tz::testing
