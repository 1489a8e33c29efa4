// Tensor-level delta rule (not differentiable; autograd/ops_delta_rule.cpp pairs the forward
// with its backward): shape and dtype checks, contiguous copies, dtype dispatch, then the
// kernels of core/kernels/delta_rule.h (math and shape letters there).
//   q, k [B, H, T, Dk]; v [B, H, T, Dv]; beta [B, H, T]; h0 [B, H, Dk, Dv];
//   out [B, H, T, Dv]; state [B, H, Dk, Dv].
#pragma once

#include <cstdint>

#include "core/linear_attention.h"  // LinearAttentionForm
#include "core/tensor.h"

namespace tz {

// What a delta rule computes besides q, k, v and beta. Fill by field name:
//   DeltaRuleSpec{.h0 = state, .chunk = 64}
// The form is recurrent (the reference and decode step) or chunked (the WY form); the
// linear-attention form `parallel` has no delta-rule kernel and is refused.
struct DeltaRuleSpec {
  Tensor h0;  // [B, H, Dk, Dv]: the state to continue; undefined: zeros. Differentiable.
  LinearAttentionForm form = LinearAttentionForm::chunked;
  int64_t chunk = 64;
};

namespace core {

struct DeltaRuleGrads {
  Tensor dq, dk, dv, dbeta, dh0;  // dh0 undefined when h0 is
};

// Checks shapes, dtypes, form and chunk; throws tz::Error naming them.
void check_delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta, const DeltaRuleSpec& spec);

// Written into out [B, H, T, Dv] and state [B, H, Dk, Dv]: contiguous tensors of q's dtype (the
// autograd op's views of one buffer). starts: where the chunked form keeps its chunk start
// states for the backward (made by delta_rule_starts); undefined: not kept.
void delta_rule(const Tensor& out, const Tensor& state, const Tensor& q, const Tensor& k, const Tensor& v,
                const Tensor& beta, const DeltaRuleSpec& spec, const Tensor& starts = Tensor());
// An uninitialised buffer for the chunk start states of the chunked form (undefined for the
// recurrent form): T / chunk + 1 states of [Dk, Dv] per head.
Tensor delta_rule_starts(const Tensor& q, const Tensor& v, const DeltaRuleSpec& spec);
// dout [B, H, T, Dv]; dstate [B, H, Dk, Dv] or undefined (zero); starts: the forward's kept
// states (same spec), or undefined to recompute them.
DeltaRuleGrads delta_rule_backward(const Tensor& dout, const Tensor& dstate, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& beta, const DeltaRuleSpec& spec,
                                   const Tensor& starts = Tensor());

}  // namespace core
}  // namespace tz
