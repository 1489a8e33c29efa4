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

// One node for both results: out and state are contiguous views of one flat buffer (as
// linear_attention's), which the kernel writes directly. The closure saves the inputs
// (detached) and, for the chunked form, the chunk start states.
DeltaRuleResult delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta,
                           const DeltaRuleSpec& spec) {
  core::check_delta_rule(q, k, v, beta, spec);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dk = q.size(3), Dv = v.size(3);
  const int64_t n_out = B * H * T * Dv, n_state = B * H * Dk * Dv;
  Tensor packed = empty({n_out + n_state}, q.dtype());
  auto out_of = [&] { return packed.narrow(0, 0, n_out).view({B, H, T, Dv}); };
  auto state_of = [&] { return packed.narrow(0, n_out, n_state).view({B, H, Dk, Dv}); };
  const bool grad = any_requires_grad({&q, &k, &v, &beta, &spec.h0});
  const Tensor starts = grad ? core::delta_rule_starts(q, v, spec) : Tensor();
  core::delta_rule(out_of(), state_of(), q, k, v, beta, spec, starts);
  DeltaRuleSpec saved{.h0 = spec.h0.defined() ? spec.h0.detach() : Tensor(), .form = spec.form, .chunk = spec.chunk};
  Tensor qs = q.detach(), ks = k.detach(), vs = v.detach(), bs = beta.detach();
  make_node(OpId::delta_rule, packed, {q, k, v, beta, spec.h0},
            [qs, ks, vs, bs, saved, starts, B, H, T, Dk, Dv, n_out, n_state](const Tensor& g) {
              Tensor gc = core::contiguous(g);
              Tensor dout = gc.narrow(0, 0, n_out).view({B, H, T, Dv});
              Tensor dstate = gc.narrow(0, n_out, n_state).view({B, H, Dk, Dv});
              core::DeltaRuleGrads r = core::delta_rule_backward(dout, dstate, qs, ks, vs, bs, saved, starts);
              return std::vector<Tensor>{r.dq, r.dk, r.dv, r.dbeta, r.dh0};
            });
  return {out_of(), state_of()};  // views made after the node: they carry its history
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
