// The delta-rule op: forward and backward side by side, each a call of the tensor-level
// functions in core/delta_rule.h (kernels and math in core/kernels/delta_rule.h), and its
// composite reference: the recurrent loop built from the plain differentiable ops.
//
// Shape letters: B batch, H heads, T time, Dk key dim, Dv value dim.
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/delta_rule.h"

namespace tz {

// One node for both results: out and state are views of one packed [B, H, T Dv + Dk Dv]
// output (as linear_attention's). The closure saves the inputs (detached); the backward
// recomputes the chunk start states.
DeltaRuleResult delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta,
                           const DeltaRuleSpec& spec) {
  core::DeltaRuleForward f = core::delta_rule(q, k, v, beta, spec);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dk = q.size(3), Dv = v.size(3);
  Tensor packed = empty({B, H, T * Dv + Dk * Dv}, q.dtype());
  core::copy_(packed.narrow(2, 0, T * Dv), f.out.view({B, H, T * Dv}));
  core::copy_(packed.narrow(2, T * Dv, Dk * Dv), f.state.view({B, H, Dk * Dv}));
  DeltaRuleSpec saved{.h0 = spec.h0.defined() ? spec.h0.detach() : Tensor(), .form = spec.form, .chunk = spec.chunk};
  Tensor qs = q.detach(), ks = k.detach(), vs = v.detach(), bs = beta.detach();
  make_node(OpId::delta_rule, packed, {q, k, v, beta, spec.h0},
            [qs, ks, vs, bs, saved, B, H, T, Dk, Dv](const Tensor& g) {
              Tensor gc = core::contiguous(g);
              Tensor dout = gc.narrow(2, 0, T * Dv).reshape({B, H, T, Dv});
              Tensor dstate = gc.narrow(2, T * Dv, Dk * Dv).reshape({B, H, Dk, Dv});
              core::DeltaRuleGrads r = core::delta_rule_backward(dout, dstate, qs, ks, vs, bs, saved);
              return std::vector<Tensor>{r.dq, r.dk, r.dv, r.dbeta, r.dh0};
            });
  return {packed.narrow(2, 0, T * Dv).view({B, H, T, Dv}), packed.narrow(2, T * Dv, Dk * Dv).view({B, H, Dk, Dv})};
}

// S_t = S_{t-1} + beta_t k_t^T (v_t - k_t S_{t-1}), o_t = q_t S_t, one token at a time.
DeltaRuleResult delta_rule_composite(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta,
                                     const DeltaRuleSpec& spec) {
  core::check_delta_rule(q, k, v, beta, spec);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dk = q.size(3), Dv = v.size(3);
  Tensor S = spec.h0.defined() ? spec.h0 : zeros({B, H, Dk, Dv}, q.dtype());
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < T; ++t) {
    Tensor kt = k.narrow(2, t, 1), bt = beta.narrow(2, t, 1).unsqueeze(-1);  // [B, H, 1, Dk], [B, H, 1, 1]
    Tensor u = bt * (v.narrow(2, t, 1) - matmul(kt, S));
    S = S + matmul(kt.transpose(-1, -2), u);
    outs.push_back(matmul(q.narrow(2, t, 1), S));
  }
  return {T > 0 ? cat(outs, 2) : zeros({B, H, 0, Dv}, q.dtype()), S};
}

}  // namespace tz
