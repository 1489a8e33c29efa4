// The linear attention op: forward and backward side by side, each a call of the tensor-level
// functions in core/linear_attention.h (kernels and math in core/kernels/linear_attention.h),
// and its composite reference: the recurrent loop built from the plain differentiable ops.
//
// Shape letters: B batch, H heads, T time, Dk key dim, Dv value dim (Dv + 1 with the
// normaliser's column).
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/linear_attention.h"

namespace tz {

namespace {
// v with a column of ones appended: the state's last column then sums the decayed keys (z).
Tensor with_ones_column(const Tensor& v) { return cat({v, ones({v.size(0), v.size(1), v.size(2), 1}, v.dtype())}, 3); }
// o = num / (den + eps), num and den the first Dv columns and the last one.
Tensor normalised(const Tensor& o, double eps) {
  const int64_t Dv = o.size(3) - 1;
  return o.narrow(3, 0, Dv) / (o.narrow(3, Dv, 1) + eps);
}
}  // namespace

// One node for both results: out and state are contiguous views of one flat buffer (out's
// B H T Dv values, then the state's B H Dk Dv), which the kernel writes directly, so that a
// loss on either (or both) reaches the one backward. The closure saves the inputs
// (detached) and, for the chunked form, the block start states (T / chunk + 1 states per
// head; the backward would otherwise recompute them in a forward sweep).
LinearAttentionResult linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const LinearAttentionSpec& spec) {
  TZ_CHECK(v.defined() && v.dim() == 4, "linear_attention: expected v [B, H, T, Dv], got ",
           v.defined() ? v.shape() : Shape{});
  const Tensor vv = spec.normalise ? with_ones_column(v) : v;
  core::check_linear_attention(q, k, vv, spec);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dk = q.size(3), Dv = vv.size(3);
  const int64_t n_out = B * H * T * Dv, n_state = B * H * Dk * Dv;
  Tensor packed = empty({n_out + n_state}, q.dtype());
  auto out_of = [&] { return packed.narrow(0, 0, n_out).view({B, H, T, Dv}); };
  auto state_of = [&] { return packed.narrow(0, n_out, n_state).view({B, H, Dk, Dv}); };
  const bool grad = any_requires_grad({&q, &k, &vv, &spec.log_decay, &spec.bonus, &spec.h0});
  const Tensor starts = grad ? core::linear_attention_starts(q, vv, spec) : Tensor();
  core::linear_attention(out_of(), state_of(), q, k, vv, spec, starts);
  LinearAttentionSpec saved{.log_decay = spec.log_decay.defined() ? spec.log_decay.detach() : Tensor(),
                            .bonus = spec.bonus.defined() ? spec.bonus.detach() : Tensor(),
                            .h0 = spec.h0.defined() ? spec.h0.detach() : Tensor(),
                            .form = spec.form,
                            .chunk = spec.chunk};
  Tensor qs = q.detach(), ks = k.detach(), vs = vv.detach();
  make_node(OpId::linear_attention, packed, {q, k, vv, spec.log_decay, spec.bonus, spec.h0},
            [qs, ks, vs, saved, starts, B, H, T, Dk, Dv, n_out, n_state](const Tensor& g) {
              Tensor gc = core::contiguous(g);
              Tensor dout = gc.narrow(0, 0, n_out).view({B, H, T, Dv});
              Tensor dstate = gc.narrow(0, n_out, n_state).view({B, H, Dk, Dv});
              core::LinearAttentionGrads r = core::linear_attention_backward(dout, dstate, qs, ks, vs, saved, starts);
              return std::vector<Tensor>{r.dq, r.dk, r.dv, r.dg, r.du, r.dh0};
            });
  Tensor out = out_of(), state = state_of();  // views made after the node: they carry its history
  if (spec.normalise) out = normalised(out, spec.eps);
  return {out, state};
}

// S_t = diag(a_t) S_{t-1} + k_t^T v_t and o_t = q_t S_t (or, with the bonus u,
// o_t = q_t (S_{t-1} + diag(u) k_t^T v_t) before the update), one token at a time.
LinearAttentionResult linear_attention_composite(const Tensor& q, const Tensor& k, const Tensor& v,
                                                 const LinearAttentionSpec& spec) {
  TZ_CHECK(v.defined() && v.dim() == 4, "linear_attention_composite: expected v [B, H, T, Dv], got ",
           v.defined() ? v.shape() : Shape{});
  const Tensor vv = spec.normalise ? with_ones_column(v) : v;
  core::check_linear_attention(q, k, vv, spec);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dk = q.size(3), Dv = vv.size(3);
  const Tensor& g = spec.log_decay;
  Tensor S = spec.h0.defined() ? spec.h0 : zeros({B, H, Dk, Dv}, q.dtype());
  Tensor u = spec.bonus.defined() ? spec.bonus.reshape({1, H, Dk, 1}) : Tensor();
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < T; ++t) {
    Tensor qt = q.narrow(2, t, 1), kv = matmul(k.narrow(2, t, 1).transpose(-1, -2), vv.narrow(2, t, 1));
    Tensor a;  // [B, H, 1, 1] or [B, H, Dk, 1]
    if (g.defined()) a = g.dim() == 3 ? exp(g.narrow(2, t, 1)).unsqueeze(-1) : exp(g.narrow(2, t, 1)).transpose(-1, -2);
    if (u.defined()) outs.push_back(matmul(qt, S + u * kv));
    S = (a.defined() ? a * S : S) + kv;
    if (!u.defined()) outs.push_back(matmul(qt, S));
  }
  Tensor out = T > 0 ? cat(outs, 2) : zeros({B, H, 0, Dv}, q.dtype());
  if (spec.normalise) out = normalised(out, spec.eps);
  return {out, S};
}

}  // namespace tz
