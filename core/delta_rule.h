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

struct DeltaRuleForward {
  Tensor out, state;
};
struct DeltaRuleGrads {
  Tensor dq, dk, dv, dbeta, dh0;  // dh0 undefined when h0 is
};

// Checks shapes, dtypes, form and chunk; throws tz::Error naming them.
void check_delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta, const DeltaRuleSpec& spec);

DeltaRuleForward delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta,
                            const DeltaRuleSpec& spec);
// dout [B, H, T, Dv]; dstate [B, H, Dk, Dv] or undefined (zero).
DeltaRuleGrads delta_rule_backward(const Tensor& dout, const Tensor& dstate, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& beta, const DeltaRuleSpec& spec);

}  // namespace core
}  // namespace tz
