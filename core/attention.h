// Tensor-level fused attention (not differentiable; autograd/ops_attention.cpp pairs the
// forward with its backward): shape and dtype checks, layouts, dtype dispatch, then the
// kernels of core/kernels/attention.h (math and shape letters there).
//   q [B, H, T, D]; k, v [B, G, S, D] (G divides H); out [B, H, T, D]; lse [B, H, T];
//   rel_bias [H, T + S - 1] or [1, T + S - 1] (one row shared by the heads), entry
//   S - 1 + i - j biasing the score of query i and key j (distance q_offset + i - j);
//   rel_q [B, H, T, Dr] and rel_k [H, T + S - 1, Dr] (relative keys, the same numbering);
//   pair_q [B or 1, H, T, Dp] and pair_k [B or 1, H, S, Dp] (pair product).
// Inputs whose last dim has stride 1 are read in place (e.g. head views of a packed qkv);
// others are copied once. `out` is returned as a [B, H, T, D] view of [B, T, H, D] memory,
// so out.permute(0, 2, 1, 3).reshape(B, T, H * D) - the usual merge of heads - is a view.
// The gradients use the same head-interleaved layout.
#pragma once

#include <cstdint>
#include <memory>

#include "core/kernels/attention_mask.h"
#include "core/tensor.h"

namespace tz {

// What an attention computes besides q, k, v; the same spec drives the fused op, the
// composite reference (autograd/ops.h) and the kernels here. Fill it by field name:
//   AttentionSpec{.causal = true, .mask = window, .rel_bias = alibi_table}
struct AttentionSpec {
  bool causal = false;   // query i sees key j iff j <= q_offset + i
  int64_t q_offset = 0;  // query i sits at key position q_offset + i (>= 0 when causal)
  double scale = 0;      // 0 = 1/sqrt(D)
  // More hidden pairs, ANDed with causal (core/kernels/attention_mask.h). Terms that point
  // at flag memory need it alive until the backward has run: build them with
  // core::key_padding_mask / core::forgotten_keys_mask below, which own a copy of their
  // flags, or keep the flags alive yourself.
  std::shared_ptr<const kernels::AttentionMask> mask;
  Tensor rel_bias;  // [H or 1, T + S - 1] relative score bias (differentiable), or undefined
  // Relative keys (Transformer-XL's (b) + (d)): score_ij += scale * rel_q[b, h, i] .
  // rel_k[h, S - 1 + i - j]. Both differentiable; undefined = none.
  Tensor rel_q, rel_k;
  // Pair product (TUPE's untied position term): score_ij += pair_scale * pair_q[b, h, i] .
  // pair_k[b, h, j]. Both differentiable; undefined = none.
  Tensor pair_q, pair_k;
  double pair_scale = 0;
  // Explicit sparse attention (arXiv:1912.11637): each query keeps its topk largest scores,
  // ties with the k-th all kept (0 = off).
  int64_t topk = 0;
  // The forward's top-k thresholds [B, H, T] (AttentionForward::threshold), handed to the
  // backward so that it need not find them again; undefined = the backward finds them.
  Tensor topk_threshold;
};

namespace core {

struct AttentionForward {
  Tensor out, lse;
  Tensor threshold;  // [B, H, T] top-k thresholds, with spec.topk
};
struct AttentionGrads {
  Tensor dq, dk, dv;
  Tensor drel_bias;  // shaped like spec.rel_bias (contiguous), when it is defined
  // Shaped like the spec's operands (summed over b for a pair operand of batch 1).
  Tensor drel_q, drel_k, dpair_q, dpair_k;
};

// A query that sees no key (the mask hides them all) gets out = 0 and lse = -inf.
// reference = true runs the naive materialising kernels (tests).
AttentionForward attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec,
                           bool reference = false);
// g: gradient of out. out and lse as returned by attention() for the same spec.
AttentionGrads attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, const AttentionSpec& spec, bool reference = false);

// Plain attention (no mask terms, no bias).
AttentionForward attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t q_offset,
                           double scale, bool reference = false);
AttentionGrads attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, bool causal, int64_t q_offset, double scale,
                                  bool reference = false);

// Mask terms that own a private copy of their flags (so the mask stays valid however long
// the autograd graph keeps it): keep [B, S], nonzero = a real key; forgotten [B, S],
// nonzero = key forgotten (Forgetful Causal Masking). Any dtype.
std::shared_ptr<const kernels::MaskTerm> key_padding_mask(const Tensor& keep);
std::shared_ptr<const kernels::MaskTerm> forgotten_keys_mask(const Tensor& forgotten);

}  // namespace core
}  // namespace tz
