// Poolingformer's two-level attention, the causal form. "Poolingformer: Long Document
// Modeling with Pooling Attention", Zhang, Gong, Shen, Li, Lv, Duan, Chen 2021,
// arXiv:2105.04371, sec. 2.
//
// Shapes and the layer: nn/sparse_attention/common.h. Level 1: a sliding window of w1 raw
// keys, p - w1 < j <= p. Level 2: keys and values mean-pooled (kernel = stride kappa) into
// slots kc_m = mean_{t < kappa} k_{m kappa + t} (vc likewise), of which the query at p sees
// the complete ones inside its larger window w2 and wholly before its level-1 window:
//   p - w2 < m kappa   and   (m + 1) kappa - 1 <= p - w1
// (causal: only complete past windows are pooled). The two levels are one softmax over
// their union, merged by log-sum-exp (core/attention_partial.h); the level-2 rule keeps them
// disjoint, so with kappa = 1 and w2 >= T it is full causal attention.
// Deviation: the paper stacks the levels (level 2 reads level 1's output) and pools with a
// strided convolution as an option; here the levels share one softmax and pool by the mean.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<int64_t> kPoolWindow{"pool_window", 1024, "Poolingformer: level-2 window w2 (pooled keys)"};
inline const Key<int64_t> kPoolStride{"pool_stride", 4, "Poolingformer: pooling kernel = stride kappa"};

Attend poolingformer_attend(int64_t w1, int64_t w2, int64_t kappa);

}  // namespace tz::nn
