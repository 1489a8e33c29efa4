// Partial attention results and their exact merge: attention over disjoint key subsets
// K_1, ..., K_n of the same queries, each returning (o_c, lse_c) (core/attention.h), combines
// into attention over their union (the online softmax of FlashAttention, arXiv:2205.14135,
// across calls; memory-efficient attention, Rabe & Staats, arXiv:2112.05682; LongNet's
// dilated branches, arXiv:2307.02486; Ring attention's shards, arXiv:2310.01889):
//
//   lse = log sum_c exp(lse_c)                    (with the max subtracted)
//   o   = sum_c exp(lse_c - lse) o_c
//
// Shape letters as in core/attention.h: B batch, H query heads, T queries, D head dim;
// o_c [B, H, T, D], lse_c [B, H, T]. A part in which a query sees no key has o_c = 0 and
// lse_c = -inf and weighs 0; a query that sees no key in any part gets o = 0, lse = -inf.
//
// The gradient of the merged attention needs no gradient of lse: with P = exp(s - lse) over
// the union and D_i = dO_i . o_i, the backward of every part is the fused backward of that
// part called with the merged o and lse (core::attention_backward), and dq sums over the
// parts. tz::attention_merged (autograd/ops.h) is that op.
#pragma once

#include <vector>

#include "core/attention.h"

namespace tz::core {

// The merge above; every part of the same shape and dtype. out [B, H, T, D] contiguous.
AttentionForward attention_merge(const std::vector<AttentionForward>& parts);

// One part of a merged attention: the keys, values and spec of one key subset (its mask
// terms and q_offset place the subset's keys). Disjoint parts give attention over their
// union; a pair seen by two parts counts twice (LongNet's overlapping branches).
struct AttentionPart {
  Tensor k, v;  // [B, G, S_c, D]
  AttentionSpec spec;
};

// Forward of the parts, merged. Not differentiable (tz::attention_merged is).
AttentionForward attention_parts(const Tensor& q, const std::vector<AttentionPart>& parts);

}  // namespace tz::core
