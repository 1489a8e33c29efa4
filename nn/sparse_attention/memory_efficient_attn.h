// Memory-efficient attention: queries and keys in chunks, the key chunks of each query chunk
// combined by log-sum-exp. "Self-attention Does Not Need O(n^2) Memory", Rabe, Staats 2021,
// arXiv:2112.05682.
//
// Shapes and the layer: nn/sparse_attention/common.h; chunks of c positions on the absolute
// position grid. For query chunk Q_a (positions [a c, (a + 1) c), the first one cut at the
// cache length) and key chunks K_b, V_b with b c <= last position of Q_a:
//   (o_b, lse_b) = causal attention(Q_a, K_b, V_b)      (query at q_offset a c - b c)
//   o_a = sum_b exp(lse_b - lse) o_b,   lse = log sum_b exp(lse_b)
// (core/attention_partial.h; the paper's running sums with the chunk max subtracted), then
// o = concat_a o_a. tz::attention_merged differentiates it: each key chunk's fused backward
// with the merged (o_a, lse). Equal to full causal attention for every c.
// Deviation: the paper checkpoints each chunk; here the fused kernel already keeps only
// q, k, v, o and lse (O(T)), so nothing more is recomputed.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {
Tensor chunked_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset, int64_t c);
}  // namespace tz::nn
