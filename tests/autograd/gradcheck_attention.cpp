// Gradcheck cases (f64) for the fused attention op: plain, and with mask terms, a relative
// score bias (its gradient checked too) and grouped key/value heads.
#include "autograd/ops.h"
#include "core/attention.h"
#include "core/kernels/attention_mask.h"
#include "tests/autograd/gradcheck_cases.h"
#include "tests/test_util.h"

namespace tz::testing {
TZ_GRADCHECK_CASE(attention, "causal q, k, v [1, 2, 5, 3]") {
  return GradcheckCase{[](auto& x) { return tz::attention(x[0], x[1], x[2], true); },
                       {leaf({1, 2, 5, 3}, 41), leaf({1, 2, 5, 3}, 42), leaf({1, 2, 5, 3}, 43)}};
}
TZ_GRADCHECK_CASE(attention, "causal with q_offset 4: q [2, 1, 3, 4], k, v [2, 1, 7, 4], scale 0.7") {
  return GradcheckCase{[](auto& x) { return tz::attention(x[0], x[1], x[2], true, 4, 0.7); },
                       {leaf({2, 1, 3, 4}, 44), leaf({2, 1, 7, 4}, 45), leaf({2, 1, 7, 4}, 46)}};
}
TZ_GRADCHECK_CASE(attention, "not causal, non-contiguous q [1, 2, 4, 3], k, v [1, 2, 6, 3]") {
  return GradcheckCase{[](auto& x) { return tz::attention(x[0], x[1], x[2], false); },
                       {nc_leaf({1, 2, 4, 3}, 47), leaf({1, 2, 6, 3}, 48), nc_leaf({1, 2, 6, 3}, 49)}};
}
TZ_GRADCHECK_CASE(
    attention,
    "multi-query (G 1 of H 2), causal, window 3, rel_bias [2, 9]: q [2, 2, 4, 3], k, v [2, 1, 6, 3], q_offset 2") {
  auto mask = std::make_shared<kernels::AttentionMask>();
  mask->terms = {std::make_shared<kernels::WindowMask>(3)};
  return GradcheckCase{[mask](auto& x) {
                         return tz::attention(
                             x[0], x[1], x[2],
                             AttentionSpec{.causal = true, .q_offset = 2, .mask = mask, .rel_bias = x[3]});
                       },
                       {leaf({2, 2, 4, 3}, 50), leaf({2, 1, 6, 3}, 51), leaf({2, 1, 6, 3}, 52), leaf({2, 9}, 53)}};
}
TZ_GRADCHECK_CASE(attention,
                  "G 2 of H 4, key padding (batch row 1 all padded) & forgotten keys, shared rel_bias [1, 10], "
                  "non-contiguous q [2, 4, 5, 3], k, v [2, 2, 6, 3]") {
  auto mask = std::make_shared<kernels::AttentionMask>();
  mask->terms = {core::key_padding_mask(tensor({1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0}, {2, 6}, DType::i64)),
                 core::forgotten_keys_mask(tensor({0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0}, {2, 6}, DType::i64))};
  return GradcheckCase{[mask](auto& x) {
                         return tz::attention(x[0], x[1], x[2],
                                              AttentionSpec{.q_offset = 1, .mask = mask, .rel_bias = x[3]});
                       },
                       {nc_leaf({2, 4, 5, 3}, 54), leaf({2, 2, 6, 3}, 55), leaf({2, 2, 6, 3}, 56), leaf({1, 10}, 57)}};
}
TZ_GRADCHECK_CASE(attention,
                  "rel_bias [2, 8] alone, causal, scale 0.6: q [1, 2, 4, 3], k, v [1, 2, 5, 3], q_offset 1") {
  return GradcheckCase{[](auto& x) {
                         return tz::attention(
                             x[0], x[1], x[2],
                             AttentionSpec{.causal = true, .q_offset = 1, .scale = 0.6, .rel_bias = x[3]});
                       },
                       {leaf({1, 2, 4, 3}, 58), leaf({1, 2, 5, 3}, 59), leaf({1, 2, 5, 3}, 60), leaf({2, 8}, 61)}};
}
}  // namespace tz::testing
