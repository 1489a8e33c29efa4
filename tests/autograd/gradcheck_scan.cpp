// Gradcheck cases for the scan ops of autograd/ops_scan.cpp: the elementwise scan (real and
// complex, with and without h0, the loop and the chunked form with T not a multiple of the
// chunk) and the selective scan (with and without z, Dskip, h0; checkpoint chunks that
// split T unevenly). The selective scan's two outputs are checked together: y and the final
// state concatenated.
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/tensor.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {
Tensor flat_pair(const SelectiveScanResult& r) { return cat({r.y.reshape({-1}), r.state.reshape({-1})}, 0); }
}  // namespace

TZ_GRADCHECK_CASE(scan, "real, B 2, T 7, D 3, with h0, the loop over T") {
  return {[](In x) { return scan(x[0], x[1], x[2], {.chunk = 7}); },
          {leaf({2, 7, 3}, 1, 0.5, 0.3), leaf({2, 7, 3}, 2), leaf({2, 3}, 3)}};
}
TZ_GRADCHECK_CASE(scan, "real, T 7 in chunks of 3, with h0") {
  return {[](In x) { return scan(x[0], x[1], x[2], {.chunk = 3}); },
          {leaf({2, 7, 3}, 4, 0.5, 0.3), leaf({2, 7, 3}, 5), leaf({2, 3}, 6)}};
}
TZ_GRADCHECK_CASE(scan, "complex pairs, T 5 in chunks of 2, with h0") {
  return {[](In x) { return scan(x[0], x[1], x[2], {.chunk = 2, .complex = true}); },
          {leaf({1, 5, 2, 2}, 7, 0.5, 0.2), leaf({1, 5, 2, 2}, 8), leaf({1, 2, 2}, 9)}};
}
TZ_GRADCHECK_CASE(scan, "real, no h0, non-contiguous a") {
  return {[](In x) { return scan(x[0], x[1], Tensor(), {.chunk = 4}); }, {nc_leaf({2, 6, 3}, 10), leaf({2, 6, 3}, 11)}};
}

TZ_GRADCHECK_CASE(selective_scan, "B 2, T 5, D 3, N 4, z, Dskip and h0, chunks of 2") {
  return {[](In x) { return flat_pair(selective_scan(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], {.chunk = 2})); },
          {leaf({2, 5, 3}, 20), leaf({2, 5, 3}, 21, 0.2, 0.6), leaf({3, 4}, 22, 0.3, -1.0), leaf({2, 5, 4}, 23),
           leaf({2, 5, 4}, 24), leaf({3}, 25), leaf({2, 5, 3}, 26), leaf({2, 3, 4}, 27)},
          {.names = {"u", "delta", "A", "B", "C", "D", "z", "h0"}}};
}
TZ_GRADCHECK_CASE(selective_scan, "no z, no Dskip, no h0, one chunk") {
  return {[](In x) { return flat_pair(selective_scan(x[0], x[1], x[2], x[3], x[4])); },
          {leaf({1, 4, 2}, 30), leaf({1, 4, 2}, 31, 0.2, 0.6), leaf({2, 3}, 32, 0.3, -1.0), leaf({1, 4, 3}, 33),
           leaf({1, 4, 3}, 34)},
          {.names = {"u", "delta", "A", "B", "C"}}};
}
TZ_GRADCHECK_CASE(selective_scan, "the reference kernels, with z and h0") {
  return {[](In x) {
            return flat_pair(selective_scan(x[0], x[1], x[2], x[3], x[4], Tensor(), x[5], x[6], {.reference = true}));
          },
          {leaf({2, 3, 2}, 40), leaf({2, 3, 2}, 41, 0.2, 0.6), leaf({2, 2}, 42, 0.3, -1.0), leaf({2, 3, 2}, 43),
           leaf({2, 3, 2}, 44), leaf({2, 3, 2}, 45), leaf({2, 2, 2}, 46)}};
}

}  // namespace tz::testing
