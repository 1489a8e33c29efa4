// Local (sliding-window) attention: every query attends to the w most recent positions.
// "Image Transformer", Parmar, Vaswani, Uszkoreit, Kaiser, Shazeer, Ku, Tran 2018,
// arXiv:1802.05751 (1-D local attention); the causal sliding form as in lucidrains'
// local-attention and Longformer's window.
//
// Shapes and the layer: nn/sparse_attention/common.h.
//   S_i = {j : i - w < j <= i},   o_i = sum_{j in S_i} softmax_j(q_i . k_j / sqrt(D)) v_j
// Computed in O(T w): the fused kernel's WindowMask skips every key tile wholly outside the
// band and masks the two partial tiles of each row. w >= T is full causal attention.
// Deviation: the blocked form (query block b reads key blocks b - 1, b) is not offered; the
// sliding band is exact per position.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {
Attend local_attend(int64_t w);
}  // namespace tz::nn
