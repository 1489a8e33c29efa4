// Tensor-level delta rule: see delta_rule.h.
#include "core/delta_rule.h"

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/delta_rule.h"

namespace tz::core {

namespace {
kernels::DeltaSizes check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta,
                                 const DeltaRuleSpec& s) {
  TZ_CHECK(q.defined() && k.defined() && v.defined() && beta.defined(), "delta_rule: undefined q, k, v or beta");
  TZ_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.dim() == 4 && v.size(0) == q.size(0) && v.size(1) == q.size(1) &&
               v.size(2) == q.size(2),
           "delta_rule: expected q, k [B, H, T, Dk] and v [B, H, T, Dv], got q ", q.shape(), ", k ", k.shape(), ", v ",
           v.shape());
  TZ_CHECK(q.size(3) > 0 && v.size(3) > 0, "delta_rule: Dk and Dv must be > 0, got q ", q.shape(), ", v ", v.shape());
  const DType dt = q.dtype();
  TZ_CHECK(is_floating(dt) && k.dtype() == dt && v.dtype() == dt && beta.dtype() == dt,
           "delta_rule: dtypes differ or are not float, q ", dtype_name(dt), " k ", dtype_name(k.dtype()), " v ",
           dtype_name(v.dtype()), " beta ", dtype_name(beta.dtype()));
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dk = q.size(3), Dv = v.size(3);
  TZ_CHECK(beta.shape() == Shape({B, H, T}), "delta_rule: beta must be [B, H, T] = [", B, ", ", H, ", ", T, "], got ",
           beta.shape());
  if (s.h0.defined())
    TZ_CHECK(s.h0.shape() == Shape({B, H, Dk, Dv}) && s.h0.dtype() == dt, "delta_rule: h0 must be [B, H, Dk, Dv] = [",
             B, ", ", H, ", ", Dk, ", ", Dv, "] of ", dtype_name(dt), ", got ", s.h0.shape(), " ",
             dtype_name(s.h0.dtype()));
  TZ_CHECK(s.form != LinearAttentionForm::parallel,
           "delta_rule: form must be recurrent or chunked (the delta rule has no parallel form here), got parallel");
  TZ_CHECK(s.chunk >= 1, "delta_rule: chunk must be >= 1, got ", s.chunk);
  return {.B = B, .H = H, .T = T, .Dk = Dk, .Dv = Dv};
}

Tensor contig(const Tensor& t) { return t.defined() ? contiguous(t) : Tensor(); }

template <class T>
const T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}
template <class T>
T* mptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}
}  // namespace

void check_delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta,
                      const DeltaRuleSpec& spec) {
  check_inputs(q, k, v, beta, spec);
}

Tensor delta_rule_starts(const Tensor& q, const Tensor& v, const DeltaRuleSpec& spec) {
  if (spec.form != LinearAttentionForm::chunked) return Tensor();
  const kernels::DeltaSizes n{.B = q.size(0), .H = q.size(1), .T = q.size(2), .Dk = q.size(3), .Dv = v.size(3)};
  return empty({kernels::delta_rule_starts_size(n, spec.chunk)}, q.dtype());
}

namespace {
void check_starts(const Tensor& starts, const kernels::DeltaSizes& n, const DeltaRuleSpec& spec, DType dt) {
  TZ_CHECK(
      !starts.defined() || (spec.form == LinearAttentionForm::chunked && starts.is_contiguous() &&
                            starts.dtype() == dt && starts.numel() == kernels::delta_rule_starts_size(n, spec.chunk)),
      "delta_rule: starts must come from delta_rule_starts for the chunked form");
}
}  // namespace

void delta_rule(const Tensor& out, const Tensor& state, const Tensor& q, const Tensor& k, const Tensor& v,
                const Tensor& beta, const DeltaRuleSpec& spec, const Tensor& starts) {
  const kernels::DeltaSizes n = check_inputs(q, k, v, beta, spec);
  TZ_CHECK(out.defined() && state.defined() && out.is_contiguous() && state.is_contiguous() &&
               out.dtype() == q.dtype() && state.dtype() == q.dtype() && out.shape() == Shape({n.B, n.H, n.T, n.Dv}) &&
               state.shape() == Shape({n.B, n.H, n.Dk, n.Dv}),
           "delta_rule: out and state must be contiguous [B, H, T, Dv] = [", n.B, ", ", n.H, ", ", n.T, ", ", n.Dv,
           "] and [B, H, Dk, Dv] tensors of q's dtype");
  check_starts(starts, n, spec, q.dtype());
  Tensor qc = contig(q), kc = contig(k), vc = contig(v), bc = contig(beta), hc = contig(spec.h0);
  TZ_DISPATCH_FLOAT(q.dtype(), "delta_rule", [&]<class T>() {
    kernels::DeltaInputs<T> in{.q = ptr<T>(qc), .k = ptr<T>(kc), .v = ptr<T>(vc), .beta = ptr<T>(bc), .h0 = ptr<T>(hc)};
    if (spec.form == LinearAttentionForm::recurrent)
      kernels::delta_rule_recurrent(mptr<T>(out), mptr<T>(state), in, n);
    else
      kernels::delta_rule_chunked(mptr<T>(out), mptr<T>(state), in, n, spec.chunk, mptr<T>(starts));
  });
}

DeltaRuleGrads delta_rule_backward(const Tensor& dout, const Tensor& dstate, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& beta, const DeltaRuleSpec& spec,
                                   const Tensor& starts) {
  const kernels::DeltaSizes n = check_inputs(q, k, v, beta, spec);
  check_starts(starts, n, spec, q.dtype());
  const DType dt = q.dtype();
  TZ_CHECK(dout.defined() && dout.shape() == Shape({n.B, n.H, n.T, n.Dv}),
           "delta_rule backward: gradient of out must be [B, H, T, Dv] = [", n.B, ", ", n.H, ", ", n.T, ", ", n.Dv,
           "], got ", dout.defined() ? dout.shape() : Shape{});
  TZ_CHECK(!dstate.defined() || dstate.shape() == Shape({n.B, n.H, n.Dk, n.Dv}),
           "delta_rule backward: gradient of state must be [B, H, Dk, Dv], got ", dstate.shape());
  Tensor qc = contig(q), kc = contig(k), vc = contig(v), bc = contig(beta), hc = contig(spec.h0);
  Tensor doc = contiguous_as(dout, dt), dsc = dstate.defined() ? contiguous_as(dstate, dt) : Tensor();
  DeltaRuleGrads r{empty(q.shape(), dt), empty(k.shape(), dt), empty(v.shape(), dt),  // the kernels write every element
                   empty(beta.shape(), dt), hc.defined() ? empty(hc.shape(), dt) : Tensor()};
  TZ_DISPATCH_FLOAT(dt, "delta_rule backward", [&]<class T>() {
    kernels::DeltaInputs<T> in{.q = ptr<T>(qc), .k = ptr<T>(kc), .v = ptr<T>(vc), .beta = ptr<T>(bc), .h0 = ptr<T>(hc)};
    kernels::DeltaGrads<T> d{.dq = mptr<T>(r.dq),
                             .dk = mptr<T>(r.dk),
                             .dv = mptr<T>(r.dv),
                             .dbeta = mptr<T>(r.dbeta),
                             .dh0 = mptr<T>(r.dh0)};
    if (spec.form == LinearAttentionForm::recurrent)
      kernels::delta_rule_recurrent_backward(d, ptr<T>(doc), ptr<T>(dsc), in, n);
    else
      kernels::delta_rule_chunked_backward(d, ptr<T>(doc), ptr<T>(dsc), in, n, spec.chunk, ptr<T>(starts));
  });
  return r;
}

}  // namespace tz::core
