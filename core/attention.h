// Tensor-level fused attention (not differentiable; autograd/ops_attention.cpp pairs the
// forward with its backward): shape and dtype checks, layouts, dtype dispatch, then the
// kernels of core/kernels/attention.h (math and shape letters there).
//   q [B, H, T, D]; k, v [B, H, S, D]; out [B, H, T, D]; lse [B, H, T].
// Inputs whose last dim has stride 1 are read in place (e.g. head views of a packed qkv);
// others are copied once. `out` is returned as a [B, H, T, D] view of [B, T, H, D] memory,
// so out.permute(0, 2, 1, 3).reshape(B, T, H * D) - the usual merge of heads - is a view.
// The gradients use the same head-interleaved layout.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tz::core {

struct AttentionForward {
  Tensor out, lse;
};
struct AttentionGrads {
  Tensor dq, dk, dv;
};

// scale = 0 means 1/sqrt(D). Causal: query i sits at key position q_offset + i (q_offset >= 0).
// reference = true runs the naive materialising kernels (tests).
AttentionForward attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                           int64_t q_offset, double scale, bool reference = false);
// g: gradient of out. out and lse as returned by attention().
AttentionGrads attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, bool causal,
                                  int64_t q_offset, double scale, bool reference = false);

}  // namespace tz::core
