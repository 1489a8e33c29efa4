// LongNet's dilated attention. "LongNet: Scaling Transformers to 1,000,000,000 Tokens", Ding,
// Ma, Dong, Zhang, Huang, Wang, Zheng, Wei 2023, arXiv:2307.02486, sec. 2.2-2.3.
//
// Shapes and the layer: nn/sparse_attention/common.h. Branch n (n = 0 .. N-1) splits the
// positions into segments of w_n = w_0 2^n and keeps every r_n = 2^n-th position of each,
// head h taking offset h mod r_n:
//   visible_n(h, i, j) = j <= i, floor(i / w_n) = floor(j / w_n), i = j = h (mod r_n)
//   (o_n, lse_n) = attention over visible_n              (a query off the grid: lse_n = -inf)
//   o = sum_n exp(lse_n - lse) o_n,  lse = log sum_n exp(lse_n)
// the paper's combination "weighted by the denominators of the attention softmax", which is
// exactly the softmax over the branches' pairs counted with multiplicity (a pair in two
// branches counts twice). Each branch is a layout mask term of the whole sequence (the
// kernel skips the tiles outside its segments), and the merge is tz::attention_merged, whose
// backward runs every branch's fused backward with the merged (o, lse).
// With one branch of w_0 >= T it is full causal attention.
// Deviation: the branches read the sequence in place instead of gathering the dilated rows
// into dense segments (same pairs, same result; the tiles of the dilated rows are partial).
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {
Attend longnet_attend(int64_t w0, int64_t branches);
}  // namespace tz::nn
