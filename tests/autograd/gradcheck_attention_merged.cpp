// Gradcheck cases (f64) for the merged fused attention (core/attention_partial.h): disjoint
// mask parts of one k, v (a window and its complement, causal, GQA), and key chunks given
// as separate tensors with a relative bias.
#include "autograd/ops.h"
#include "core/attention_partial.h"
#include "core/kernels/attention_layout.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {
AttentionSpec masked(std::shared_ptr<const kernels::MaskTerm> term) {
  auto mask = std::make_shared<kernels::AttentionMask>();
  mask->terms = {std::move(term)};
  return AttentionSpec{.causal = true, .mask = mask};
}
}  // namespace

TZ_GRADCHECK_CASE(attention_merged,
                  "window 2 | its complement, causal, G 1 of H 2: q [1, 2, 5, 3], k, v [1, 1, 5, 3]") {
  auto near = kernels::DenseMask::of([](int64_t, int64_t p, int64_t j) { return p - j < 2; }, 2, 5, 5);
  auto far = kernels::DenseMask::of([](int64_t, int64_t p, int64_t j) { return p - j >= 2; }, 2, 5, 5);
  return GradcheckCase{[near, far](auto& x) {
                         return attention_merged(x[0], {{x[1], x[2], masked(near)}, {x[1], x[2], masked(far)}});
                       },
                       {leaf({1, 2, 5, 3}, 71), leaf({1, 1, 5, 3}, 72), leaf({1, 1, 5, 3}, 73)}};
}
TZ_GRADCHECK_CASE(attention_merged,
                  "two key chunks [1, 1, 3, 2] + [1, 1, 4, 2], rel_bias on the first: q [1, 1, 4, 2]") {
  return GradcheckCase{
      [](auto& x) {
        return attention_merged(x[0], {{x[1], x[2], AttentionSpec{.rel_bias = x[5]}}, {x[3], x[4], AttentionSpec{}}});
      },
      {leaf({1, 1, 4, 2}, 74), leaf({1, 1, 3, 2}, 75), leaf({1, 1, 3, 2}, 76), leaf({1, 1, 4, 2}, 77),
       leaf({1, 1, 4, 2}, 78), leaf({1, 6}, 79)}};
}
}  // namespace tz::testing
