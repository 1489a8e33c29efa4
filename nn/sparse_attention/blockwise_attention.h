// Blockwise self-attention (BlockBERT) in its causal form. "Blockwise Self-Attention for Long
// Document Understanding", Qiu, Ma, Levy, Yih, Wang, Tang 2020, arXiv:1911.02972.
//
// Shapes and the layer: nn/sparse_attention/common.h; blocks of b positions, qb = floor(i / b).
// Head h has a permutation pi_h of the blocks, a shift here: pi_h(qb) = qb - s_h with
// s_h = h mod 2 (the identity on even heads, one block back on odd heads):
//   visible(h, i, j) = j <= i and floor(j / b) = qb - s_h
//   o_i = softmax(q_i K_{pi_h(qb)}^T / sqrt(D)) V_{pi_h(qb)}
// Memory O(T b) per head. A query of block 0 in a shifted head sees no key and outputs 0.
// One block (b >= T) is full causal attention in the identity heads.
// Deviation: the paper's encoder permutes blocks bidirectionally; the causal form keeps
// pi_h(qb) <= qb, as the catalogue row says.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {
kernels::SparsePattern blockwise_pattern(int64_t b);
}  // namespace tz::nn
