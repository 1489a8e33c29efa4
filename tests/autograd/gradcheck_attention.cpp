// Gradcheck cases (f64) for the fused attention op: plain, and with mask terms, a relative
// score bias (its gradient checked too), grouped key/value heads, and the score terms:
// relative keys, the pair product and top-k (every operand's gradient checked).
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
TZ_GRADCHECK_CASE(attention,
                  "relative keys rel_q [2, 2, 4, 3], rel_k [2, 9, 3], G 1 of H 2, causal, q_offset 2: q [2, 2, 4, "
                  "3], k, v [2, 1, 6, 3]") {
  return GradcheckCase{[](auto& x) {
                         return tz::attention(
                             x[0], x[1], x[2],
                             AttentionSpec{.causal = true, .q_offset = 2, .rel_q = x[3], .rel_k = x[4]});
                       },
                       {leaf({2, 2, 4, 3}, 62), leaf({2, 1, 6, 3}, 63), leaf({2, 1, 6, 3}, 64), leaf({2, 2, 4, 3}, 65),
                        leaf({2, 9, 3}, 66)}};
}
TZ_GRADCHECK_CASE(attention,
                  "pair product, pair_q shared by the batch [1, 2, 5, 2], pair_k [2, 2, 5, 2], scale 0.8, not causal: "
                  "q, k, v [2, 2, 5, 3]") {
  return GradcheckCase{[](auto& x) {
                         return tz::attention(x[0], x[1], x[2],
                                              AttentionSpec{.pair_q = x[3], .pair_k = x[4], .pair_scale = 0.8});
                       },
                       {leaf({2, 2, 5, 3}, 67), leaf({2, 2, 5, 3}, 68), leaf({2, 2, 5, 3}, 69), leaf({1, 2, 5, 2}, 70),
                        leaf({2, 2, 5, 2}, 71)}};
}
TZ_GRADCHECK_CASE(attention,
                  "top-2 with relative keys and a rel_bias, causal: q [1, 2, 5, 3], k, v [1, 2, 5, 3], rel_q [1, 2, "
                  "5, 3], rel_k [2, 9, 3], rel_bias [2, 9]") {
  return GradcheckCase{[](auto& x) {
                         return tz::attention(
                             x[0], x[1], x[2],
                             AttentionSpec{.causal = true, .rel_bias = x[5], .rel_q = x[3], .rel_k = x[4], .topk = 2});
                       },
                       {leaf({1, 2, 5, 3}, 72), leaf({1, 2, 5, 3}, 73), leaf({1, 2, 5, 3}, 74), leaf({1, 2, 5, 3}, 75),
                        leaf({2, 9, 3}, 76), leaf({2, 9}, 77)}};
}
}  // namespace tz::testing
