// Gradcheck cases (f64) for the linear attention op, in each of its three forms: per-head
// and per-channel log-decays (gentle, and steep enough that the chunked form leaves the
// factorised path, -b_L > kFactorGuard = 40), the RWKV-6 bonus, an initial state, and the
// normaliser. The loss reaches both results: the output and the final state.
#include "autograd/ops.h"
#include "core/linear_attention.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {
// out and state flattened into one tensor, so that gradcheck's projection covers both.
Tensor both(const LinearAttentionResult& r) { return cat({r.out.reshape({-1}), r.state.reshape({-1})}, 0); }
}  // namespace

TZ_GRADCHECK_CASE(linear_attention,
                  "chunked (chunk 2), per-head decay, h0: q, k [1, 2, 5, 3], v [1, 2, 5, 2], g [1, 2, 5]") {
  return GradcheckCase{
      [](auto& x) { return both(linear_attention(x[0], x[1], x[2], {.log_decay = x[3], .h0 = x[4], .chunk = 2})); },
      {leaf({1, 2, 5, 3}, 71), leaf({1, 2, 5, 3}, 72), leaf({1, 2, 5, 2}, 73), leaf({1, 2, 5}, 74, 0.2, -0.5),
       leaf({1, 2, 3, 2}, 75)}};
}
TZ_GRADCHECK_CASE(linear_attention,
                  "chunked (chunk 3), per-channel decay, bonus u, h0: q, k [2, 1, 7, 3], v [2, 1, 7, 2]") {
  return GradcheckCase{
      [](auto& x) {
        return both(linear_attention(x[0], x[1], x[2], {.log_decay = x[3], .bonus = x[4], .h0 = x[5], .chunk = 3}));
      },
      {leaf({2, 1, 7, 3}, 76), leaf({2, 1, 7, 3}, 77), leaf({2, 1, 7, 2}, 78), leaf({2, 1, 7, 3}, 79, 0.2, -0.5),
       leaf({1, 3}, 80), leaf({2, 1, 3, 2}, 81)}};
}
TZ_GRADCHECK_CASE(linear_attention,
                  "chunked (chunk 3), steep per-channel decay (about -20 a step: unfactorised blocks), bonus") {
  return GradcheckCase{
      [](auto& x) { return both(linear_attention(x[0], x[1], x[2], {.log_decay = x[3], .bonus = x[4], .chunk = 3})); },
      {leaf({1, 2, 6, 3}, 82), leaf({1, 2, 6, 3}, 83), leaf({1, 2, 6, 2}, 84), leaf({1, 2, 6, 3}, 85, 1.0, -20),
       leaf({2, 3}, 86)}};
}
TZ_GRADCHECK_CASE(linear_attention, "recurrent, per-head decay, normaliser (phi = exp), h0 with its z column") {
  return GradcheckCase{
      [](auto& x) {
        return both(linear_attention(
            exp(x[0]), exp(x[1]), x[2],
            {.log_decay = x[3], .h0 = exp(x[4]), .normalise = true, .form = LinearAttentionForm::recurrent}));
      },
      {leaf({1, 2, 5, 3}, 87, 0.5), leaf({1, 2, 5, 3}, 88, 0.5), leaf({1, 2, 5, 2}, 89), leaf({1, 2, 5}, 90, 0.2, -0.5),
       leaf({1, 2, 3, 3}, 91, 0.5)}};
}
TZ_GRADCHECK_CASE(linear_attention, "parallel (materialised), per-channel decay, bonus, h0") {
  return GradcheckCase{
      [](auto& x) {
        return both(linear_attention(
            x[0], x[1], x[2], {.log_decay = x[3], .bonus = x[4], .h0 = x[5], .form = LinearAttentionForm::parallel}));
      },
      {leaf({1, 2, 5, 3}, 92), leaf({1, 2, 5, 3}, 93), leaf({1, 2, 5, 2}, 94), leaf({1, 2, 5, 3}, 95, 0.2, -0.5),
       leaf({2, 3}, 96), leaf({1, 2, 3, 2}, 97)}};
}
TZ_GRADCHECK_CASE(linear_attention, "recurrent, per-channel decay, bonus, no h0") {
  return GradcheckCase{
      [](auto& x) {
        return both(linear_attention(x[0], x[1], x[2],
                                     {.log_decay = x[3], .bonus = x[4], .form = LinearAttentionForm::recurrent}));
      },
      {leaf({1, 1, 6, 3}, 98), leaf({1, 1, 6, 3}, 99), leaf({1, 1, 6, 2}, 100), leaf({1, 1, 6, 3}, 101, 0.2, -0.5),
       leaf({1, 3}, 102)}};
}
}  // namespace tz::testing
