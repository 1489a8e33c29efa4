// Fused attention over disjoint key parts merged by log-sum-exp (core/attention_partial.h):
// forward and backward side by side.
//
// Shape letters: B batch, H query heads, G key/value heads, T queries, S_c keys of part c,
// D head dim. Forward: (o_c, lse_c) = attention(q, k_c, v_c; spec_c), merged to (o, lse).
// Backward: the fused backward of each part with the merged o and lse, whose probabilities
// exp(s - lse) are those of the union: dq = sum_c dq_c, dk_c and dv_c as they come.
#include "autograd/ops.h"
#include "core/attention_partial.h"

namespace tz {

Tensor attention_merged(const Tensor& q, const std::vector<core::AttentionPart>& parts) {
  TZ_CHECK(!parts.empty(), "attention_merged: no parts");
  core::AttentionForward f = core::attention_parts(q, parts);
  std::vector<Tensor> inputs{q};
  std::vector<core::AttentionPart> saved;
  for (const core::AttentionPart& p : parts) {
    TZ_CHECK(!p.spec.rel_q.defined() && !p.spec.pair_q.defined(),
             "attention_merged: parts take masks and relative bias tables, not relative keys or pair products");
    inputs.push_back(p.k);
    inputs.push_back(p.v);
    inputs.push_back(p.spec.rel_bias);
    core::AttentionPart s{p.k.detach(), p.v.detach(), p.spec};
    if (s.spec.rel_bias.defined()) s.spec.rel_bias = s.spec.rel_bias.detach();
    saved.push_back(std::move(s));
  }
  Tensor qs = q.detach(), os = f.out.detach(), lse = f.lse;
  make_node(OpId::attention_merged, f.out, inputs, [qs, os, lse, saved](const Tensor& g) {
    std::vector<Tensor> grads{Tensor()};
    Tensor dq;
    for (const core::AttentionPart& p : saved) {
      core::AttentionGrads r = core::attention_backward(g, qs, p.k, p.v, os, lse, p.spec);
      dq = dq.defined() ? dq + r.dq : r.dq;
      grads.push_back(r.dk);
      grads.push_back(r.dv);
      grads.push_back(r.drel_bias);
    }
    grads[0] = dq;
    return grads;
  });
  return f.out;
}

}  // namespace tz
