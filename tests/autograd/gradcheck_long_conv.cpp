// Gradcheck cases for the causal long convolution (autograd/ops_long_conv.cpp): with and
// without D, L a power of two and not, non-contiguous u, and the direct reference kernels.
#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {

TZ_GRADCHECK_CASE(long_conv, "B 2, C 3, L 7, with D") {
  return {[](In x) { return long_conv(x[0], x[1], x[2]); },
          {leaf({2, 3, 7}, 1), leaf({3, 7}, 2), leaf({3}, 3)},
          {.names = {"u", "k", "D"}}};
}
TZ_GRADCHECK_CASE(long_conv, "L 8, no D, non-contiguous u") {
  return {[](In x) { return long_conv(x[0], x[1]); }, {nc_leaf({2, 2, 8}, 4), leaf({2, 8}, 5)}};
}
TZ_GRADCHECK_CASE(long_conv, "the direct reference, L 5") {
  return {[](In x) { return long_conv(x[0], x[1], x[2], {.reference = true}); },
          {leaf({1, 2, 5}, 6), leaf({2, 5}, 7), leaf({2}, 8)}};
}

}  // namespace tz::testing
