// The registry of gradcheck cases, one or more per op of autograd/ops.def.
//
// In any test file:
//   TZ_GRADCHECK_CASE(add, "broadcast [3,1] + [4]") {
//     Tensor a = ..., b = ...;                   // f64 leaves with requires_grad_()
//     return GradcheckCase{[](auto& x) { return tz::add(x[0], x[1]); }, {a, b}};
//   }
// test_gradcheck_ops.cpp runs every case, and fails for any op without a case, for a case
// whose graph never reaches its op, and for a failing gradcheck.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/node.h"

namespace tz::testing {

struct GradcheckCase {
  GradcheckFn fn;
  std::vector<Tensor> inputs;
  GradcheckOptions options = {};
};

struct RegisteredCase {
  OpId op;
  std::string label;
  std::function<GradcheckCase()> make;
};

std::vector<RegisteredCase>& gradcheck_cases();

// Inputs for the cases: an f64 leaf of N(mean, scale^2) values that requires grad, and the
// same kind of values stored non-contiguously (transposed, or with a stride of 2).
Tensor leaf(const Shape& shape, uint64_t seed = 1, double scale = 1.0, double mean = 0.0);
Tensor nc_leaf(const Shape& shape, uint64_t seed = 1);
using In = const std::vector<Tensor>&;

struct CaseRegistrar {
  CaseRegistrar(OpId op, const char* label, std::function<GradcheckCase()> make) {
    gradcheck_cases().push_back({op, label, std::move(make)});
  }
};

}  // namespace tz::testing

#define TZ_GC_CONCAT2(a, b) a##b
#define TZ_GC_CONCAT(a, b) TZ_GC_CONCAT2(a, b)
#define TZ_GRADCHECK_CASE(op, label)                                                                            \
  static ::tz::testing::GradcheckCase TZ_GC_CONCAT(tz_gc_make_, __LINE__)();                                    \
  static ::tz::testing::CaseRegistrar TZ_GC_CONCAT(tz_gc_reg_, __LINE__)(::tz::OpId::op, label,                 \
                                                                         &TZ_GC_CONCAT(tz_gc_make_, __LINE__)); \
  static ::tz::testing::GradcheckCase TZ_GC_CONCAT(tz_gc_make_, __LINE__)()
