// Sparse Transformer's factorised attention. "Generating Long Sequences with Sparse
// Transformers", Child, Gray, Radford, Sutskever 2019, arXiv:1904.10509, sec. 4.
//
// Shapes and the layer: nn/sparse_attention/common.h; l the stride (about sqrt(T)).
//   strided: A1_i = {j : i - l < j <= i},            A2_i = {j : (i - j) mod l = 0, j <= i}
//   fixed:   A1_i = {j : floor(j / l) = floor(i / l)}, A2_i = {j : j mod l in {l - c .. l - 1}}
//   o_i = sum_{j in A_i} softmax_j(q_i . k_j / sqrt(D)) v_j
// with A_i = A1_i u A2_i in every head ("merged", sec. 4.3's single merged head) or A1 in
// even heads and A2 in odd heads ("split", the factorised heads). Two layers reach every
// j <= i from i (proved on the layout in tests/core/test_attention_layout.cpp). The pattern is
// a layout mask term (core/kernels/attention_layout.h): key tiles it never touches are skipped.
// Deviation: the per-layer interleaving (layer 1 A1, layer 2 A2) is expressed per head.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {
// pattern "strided" or "fixed"; heads "merged" or "split".
kernels::SparsePattern sparse_transformer_pattern(const std::string& pattern, int64_t l, int64_t c,
                                                  const std::string& heads);
}  // namespace tz::nn
