// Tensor-level linear attention with decays (not differentiable; autograd/ops_linear_attention.cpp
// pairs the forward with its backward): shape and dtype checks, contiguous copies, dtype
// dispatch, then the kernels of core/kernels/linear_attention.h (math and shape letters there).
//   q, k [B, H, T, Dk]; v [B, H, T, Dv]; g [B, H, T] or [B, H, T, Dk] (log-decays <= 0);
//   u [H, Dk]; h0 [B, H, Dk, Dv]; out [B, H, T, Dv]; state [B, H, Dk, Dv].
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tz {

// Which of the kernel's three forms computes it (all give the same numbers).
enum class LinearAttentionForm {
  recurrent,  // one token at a time: the reference and the decode step
  chunked,    // blocks of `chunk` tokens: the fast path for training and prefill
  parallel,   // the materialised T x T form
};
const char* linear_attention_form_name(LinearAttentionForm form);

// What a linear attention computes besides q, k, v. Fill by field name:
//   LinearAttentionSpec{.log_decay = g, .h0 = state, .chunk = 64}
// Every tensor is optional (undefined = not used) and differentiable.
struct LinearAttentionSpec {
  Tensor log_decay;  // g [B, H, T] (RetNet, Lightning, Mamba-2) or [B, H, T, Dk] (GLA, RWKV-6); undefined: no decay
  Tensor bonus;      // u [H, Dk]: RWKV-6's current-token bonus (the output then reads S_{t-1})
  Tensor h0;         // [B, H, Dk, Dv] (Dv + 1 with `normalise`): the state to continue
  // Linear attention's normaliser (arXiv:2006.16236 eq. 6): o_t = q_t S_t / (q_t z_t + eps),
  // z_t = sum_s (decayed) k_s, carried as one more value column of the state (all ones in v).
  bool normalise = false;
  double eps = 1e-6;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  int64_t chunk = 64;
};

namespace core {

struct LinearAttentionGrads {
  Tensor dq, dk, dv, dg, du, dh0;  // dg, du, dh0 undefined when g, u, h0 are
};

// Checks shapes, dtypes and the chunk as the kernel needs them; throws tz::Error naming them.
void check_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, const LinearAttentionSpec& spec);

// The kernel on q, k, v with spec.log_decay, spec.bonus, spec.h0 (spec.normalise is the
// autograd op's, not applied here), written into out [B, H, T, Dv] and state [B, H, Dk, Dv]:
// contiguous tensors of q's dtype (the autograd op's views of one buffer).
// starts: where the chunked form keeps its block start states for the backward (made by
// linear_attention_starts); undefined: not kept.
void linear_attention(const Tensor& out, const Tensor& state, const Tensor& q, const Tensor& k, const Tensor& v,
                      const LinearAttentionSpec& spec, const Tensor& starts = Tensor());
// An uninitialised buffer for the block start states of the chunked form (undefined for the
// other forms, which keep none): T / chunk + 1 states of [Dk, Dv] per head.
Tensor linear_attention_starts(const Tensor& q, const Tensor& v, const LinearAttentionSpec& spec);
// dout [B, H, T, Dv]; dstate [B, H, Dk, Dv] or undefined (zero); starts: the forward's kept
// states (same spec), or undefined to recompute them.
LinearAttentionGrads linear_attention_backward(const Tensor& dout, const Tensor& dstate, const Tensor& q,
                                               const Tensor& k, const Tensor& v, const LinearAttentionSpec& spec,
                                               const Tensor& starts = Tensor());

}  // namespace core
}  // namespace tz
