// The fused attention op: forward and backward side by side, each a call of the tensor-level
// functions in core/attention.h (kernels and math in core/kernels/attention.h).
#include "autograd/ops.h"
#include "core/attention.h"

namespace tz {

// Saves q, k, v, the output and the per-row log-sum-exp lse [B, H, T] - O(T) extra memory,
// not the T x S probabilities: the backward recomputes them tile by tile.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t q_offset,
                 double scale) {
  core::AttentionForward f = core::attention(q, k, v, causal, q_offset, scale);
  Tensor qs = q.detach(), ks = k.detach(), vs = v.detach(), os = f.out.detach(), lse = f.lse;
  make_node(OpId::attention, f.out, {q, k, v},
            [qs, ks, vs, os, lse, causal, q_offset, scale](const Tensor& g) {
              core::AttentionGrads r =
                  core::attention_backward(g, qs, ks, vs, os, lse, causal, q_offset, scale);
              return std::vector<Tensor>{r.dq, r.dk, r.dv};
            });
  return f.out;
}

}  // namespace tz
