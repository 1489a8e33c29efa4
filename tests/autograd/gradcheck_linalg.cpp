// Gradcheck cases for the matrix products of autograd/ops_linalg.cpp.
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
TZ_GRADCHECK_CASE(matmul, "[3,4] @ [4,5]") {
  return {[](In x) { return matmul(x[0], x[1]); }, {leaf({3, 4}, 1), leaf({4, 5}, 2)}};
}
TZ_GRADCHECK_CASE(matmul, "broadcast batch [2,1,3,4] @ [3,4,2]: gradients summed over batch") {
  return {[](In x) { return matmul(x[0], x[1]); }, {leaf({2, 1, 3, 4}, 1), leaf({3, 4, 2}, 2)}};
}
TZ_GRADCHECK_CASE(matmul, "batched [2,3,4] @ 2-D [4,5] (folded dB)") {
  return {[](In x) { return matmul(x[0], x[1]); }, {leaf({2, 3, 4}, 1), leaf({4, 5}, 2)}};
}
TZ_GRADCHECK_CASE(matmul, "transposed and non-contiguous inputs") {
  return {[](In x) { return matmul(x[0].t(), x[1]); }, {leaf({4, 3}, 1), nc_leaf({2, 4, 5}, 2)}};
}
TZ_GRADCHECK_CASE(matmul, "vector @ matrix, then vector @ vector (0-d result)") {
  return {[](In x) { return matmul(matmul(x[0], x[1]), x[2]); },  // [4]@[4,3] -> [3]; [3]@[3] -> []
          {leaf({4}, 1), leaf({4, 3}, 2), leaf({3}, 3)}};
}
TZ_GRADCHECK_CASE(matmul, "matrix @ vector") {
  return {[](In x) { return matmul(x[0], x[1]); }, {leaf({4, 3}, 1), nc_leaf({3}, 2)}};
}
TZ_GRADCHECK_CASE(matmul, "batched @ vector") {
  return {[](In x) { return matmul(x[0], x[1]); }, {leaf({2, 3, 4}, 1), leaf({4}, 2)}};  // -> [2, 3]
}
TZ_GRADCHECK_CASE(matmul, "vector @ batched") {
  return {[](In x) { return matmul(x[0], x[1]); }, {leaf({3}, 1), leaf({2, 3, 4}, 2)}};  // -> [2, 4]
}
TZ_GRADCHECK_CASE(matmul, "only one input requires grad") {
  Generator g(5);
  return {[](In x) { return matmul(x[0], x[1]); }, {leaf({3, 4}, 1), randn({4, 2}, g, DType::f64)}};
}
TZ_GRADCHECK_CASE(linear, "x [2,3,4], W [5,4], b [5]") {
  return {[](In x) { return linear(x[0], x[1], x[2]); }, {leaf({2, 3, 4}, 1), leaf({5, 4}, 2), leaf({5}, 3)}};
}
TZ_GRADCHECK_CASE(linear, "without bias, non-contiguous x and W") {
  return {[](In x) { return linear(x[0], x[1]); }, {nc_leaf({3, 4}, 1), nc_leaf({5, 4}, 2)}};
}
TZ_GRADCHECK_CASE(linear, "1-D x with bias") {
  return {[](In x) { return linear(x[0], x[1], x[2]); }, {leaf({4}, 1), leaf({2, 4}, 2), leaf({2}, 3)}};
}
}  // namespace tz::testing
