// Walks autograd/ops.def: every op must have a gradcheck case, and every case must pass
// and reach its op.
#include <algorithm>
#include <set>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {

std::vector<RegisteredCase>& gradcheck_cases() {
  static std::vector<RegisteredCase> cases;
  return cases;
}

Tensor leaf(const Shape& shape, uint64_t seed, double scale, double mean) {
  Generator gen(seed);
  return randn(shape, gen, DType::f64, mean, scale).requires_grad_();
}

Tensor nc_leaf(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return non_contiguous(randn(shape, gen, DType::f64)).requires_grad_();
}

TEST_CASE("every op of ops.def has a gradcheck case") {
  std::set<int> covered;
  for (auto& c : gradcheck_cases()) covered.insert(int(c.op));
  for (int i = 0; i < kNumOps; ++i)
    CHECK_MESSAGE(covered.count(i), "op '", op_name(OpId(i)), "' has no gradcheck case");
}

TEST_CASE("gradcheck of every op in f64") {
  for (auto& c : gradcheck_cases()) {
    CAPTURE(c.label);
    INFO("op ", op_name(c.op), ": ", c.label);
    GradcheckCase gc = c.make();
    Tensor y = gc.fn(gc.inputs);
    auto ops = graph_ops(y);
    CHECK_MESSAGE(std::find(ops.begin(), ops.end(), c.op) != ops.end(), "the case's graph never reaches ",
                  op_name(c.op));
    GradcheckResult r = gradcheck(gc.fn, gc.inputs, gc.options);
    CHECK_MESSAGE(r.ok, r.report);
  }
}

}  // namespace tz::testing
