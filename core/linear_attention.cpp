// Tensor-level linear attention with decays: see linear_attention.h.
#include "core/linear_attention.h"

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/linear_attention.h"

namespace tz {

const char* linear_attention_form_name(LinearAttentionForm form) {
  switch (form) {
    case LinearAttentionForm::recurrent:
      return "recurrent";
    case LinearAttentionForm::chunked:
      return "chunked";
    case LinearAttentionForm::parallel:
      return "parallel";
  }
  return "?";
}

namespace core {

namespace {
kernels::LinAttnSizes check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const LinearAttentionSpec& s) {
  TZ_CHECK(q.defined() && k.defined() && v.defined(), "linear_attention: undefined q, k or v");
  TZ_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.dim() == 4 && v.size(0) == q.size(0) && v.size(1) == q.size(1) &&
               v.size(2) == q.size(2),
           "linear_attention: expected q, k [B, H, T, Dk] and v [B, H, T, Dv], got q ", q.shape(), ", k ", k.shape(),
           ", v ", v.shape());
  TZ_CHECK(q.size(3) > 0 && v.size(3) > 0, "linear_attention: Dk and Dv must be > 0, got q ", q.shape(), ", v ",
           v.shape());
  const DType dt = q.dtype();
  TZ_CHECK(is_floating(dt) && k.dtype() == dt && v.dtype() == dt,
           "linear_attention: dtypes differ or are not float, q ", dtype_name(dt), " k ", dtype_name(k.dtype()), " v ",
           dtype_name(v.dtype()));
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dk = q.size(3), Dv = v.size(3);
  kernels::LinAttnSizes n{.B = B, .H = H, .T = T, .Dk = Dk, .Dv = Dv};
  if (s.log_decay.defined()) {
    const Tensor& g = s.log_decay;
    TZ_CHECK(g.shape() == Shape({B, H, T}) || g.shape() == Shape({B, H, T, Dk}),
             "linear_attention: log_decay must be [B, H, T] = [", B, ", ", H, ", ", T, "] or [B, H, T, Dk] = [", B,
             ", ", H, ", ", T, ", ", Dk, "], got ", g.shape());
    TZ_CHECK(g.dtype() == dt, "linear_attention: log_decay is ", dtype_name(g.dtype()), ", q is ", dtype_name(dt));
    n.channel_decay = g.dim() == 4;
  }
  if (s.bonus.defined())
    TZ_CHECK(s.bonus.shape() == Shape({H, Dk}) && s.bonus.dtype() == dt,
             "linear_attention: bonus u must be [H, Dk] = [", H, ", ", Dk, "] of ", dtype_name(dt), ", got ",
             s.bonus.shape(), " ", dtype_name(s.bonus.dtype()));
  if (s.h0.defined())
    TZ_CHECK(s.h0.shape() == Shape({B, H, Dk, Dv}) && s.h0.dtype() == dt,
             "linear_attention: h0 must be [B, H, Dk, Dv] = [", B, ", ", H, ", ", Dk, ", ", Dv, "] of ", dtype_name(dt),
             ", got ", s.h0.shape(), " ", dtype_name(s.h0.dtype()));
  TZ_CHECK(s.chunk >= 1, "linear_attention: chunk must be >= 1, got ", s.chunk);
  return n;
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

void check_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, const LinearAttentionSpec& spec) {
  check_inputs(q, k, v, spec);
}

Tensor linear_attention_starts(const Tensor& q, const Tensor& v, const LinearAttentionSpec& spec) {
  if (spec.form != LinearAttentionForm::chunked) return Tensor();
  const kernels::LinAttnSizes n{.B = q.size(0), .H = q.size(1), .T = q.size(2), .Dk = q.size(3), .Dv = v.size(3)};
  return empty({kernels::linear_attention_starts_size(n, spec.chunk)}, q.dtype());
}

namespace {
// starts, when defined, must be the chunked form's buffer of the right size.
void check_starts(const Tensor& starts, const kernels::LinAttnSizes& n, const LinearAttentionSpec& spec, DType dt) {
  if (!starts.defined()) return;
  TZ_CHECK(spec.form == LinearAttentionForm::chunked && starts.is_contiguous() && starts.dtype() == dt &&
               starts.numel() == kernels::linear_attention_starts_size(n, spec.chunk),
           "linear_attention: starts must come from linear_attention_starts for the chunked form");
}
}  // namespace

void linear_attention(const Tensor& out, const Tensor& state, const Tensor& q, const Tensor& k, const Tensor& v,
                      const LinearAttentionSpec& spec, const Tensor& starts) {
  const kernels::LinAttnSizes n = check_inputs(q, k, v, spec);
  for (const Tensor* t : {&out, &state})
    TZ_CHECK(t->defined() && t->is_contiguous() && t->dtype() == q.dtype(),
             "linear_attention: out and state must be contiguous tensors of q's dtype");
  TZ_CHECK(out.shape() == Shape({n.B, n.H, n.T, n.Dv}) && state.shape() == Shape({n.B, n.H, n.Dk, n.Dv}),
           "linear_attention: out must be [B, H, T, Dv] = [", n.B, ", ", n.H, ", ", n.T, ", ", n.Dv,
           "] and state [B, H, Dk, Dv], got ", out.shape(), " and ", state.shape());
  check_starts(starts, n, spec, q.dtype());
  Tensor qc = contig(q), kc = contig(k), vc = contig(v), gc = contig(spec.log_decay), uc = contig(spec.bonus),
         hc = contig(spec.h0);
  TZ_DISPATCH_FLOAT(q.dtype(), "linear_attention", [&]<class T>() {
    kernels::LinAttnInputs<T> in{
        .q = ptr<T>(qc), .k = ptr<T>(kc), .v = ptr<T>(vc), .g = ptr<T>(gc), .u = ptr<T>(uc), .h0 = ptr<T>(hc)};
    switch (spec.form) {
      case LinearAttentionForm::recurrent:
        kernels::linear_attention_recurrent(mptr<T>(out), mptr<T>(state), in, n);
        break;
      case LinearAttentionForm::parallel:
        kernels::linear_attention_parallel(mptr<T>(out), mptr<T>(state), in, n);
        break;
      case LinearAttentionForm::chunked:
        kernels::linear_attention_chunked(mptr<T>(out), mptr<T>(state), in, n, spec.chunk, mptr<T>(starts));
        break;
    }
  });
}

LinearAttentionGrads linear_attention_backward(const Tensor& dout, const Tensor& dstate, const Tensor& q,
                                               const Tensor& k, const Tensor& v, const LinearAttentionSpec& spec,
                                               const Tensor& starts) {
  const kernels::LinAttnSizes n = check_inputs(q, k, v, spec);
  const DType dt = q.dtype();
  TZ_CHECK(dout.defined() && dout.shape() == Shape({n.B, n.H, n.T, n.Dv}),
           "linear_attention backward: gradient of out must be [B, H, T, Dv] = [", n.B, ", ", n.H, ", ", n.T, ", ",
           n.Dv, "], got ", dout.defined() ? dout.shape() : Shape{});
  TZ_CHECK(!dstate.defined() || dstate.shape() == Shape({n.B, n.H, n.Dk, n.Dv}),
           "linear_attention backward: gradient of state must be [B, H, Dk, Dv], got ", dstate.shape());
  check_starts(starts, n, spec, dt);
  Tensor qc = contig(q), kc = contig(k), vc = contig(v), gc = contig(spec.log_decay), uc = contig(spec.bonus),
         hc = contig(spec.h0);
  Tensor doc = contiguous_as(dout, dt), dsc = dstate.defined() ? contiguous_as(dstate, dt) : Tensor();
  LinearAttentionGrads r{empty(q.shape(), dt),  // the kernels write every element
                         empty(k.shape(), dt),
                         empty(v.shape(), dt),
                         gc.defined() ? empty(gc.shape(), dt) : Tensor(),
                         uc.defined() ? empty(uc.shape(), dt) : Tensor(),
                         hc.defined() ? empty(hc.shape(), dt) : Tensor()};
  TZ_DISPATCH_FLOAT(dt, "linear_attention backward", [&]<class T>() {
    kernels::LinAttnInputs<T> in{
        .q = ptr<T>(qc), .k = ptr<T>(kc), .v = ptr<T>(vc), .g = ptr<T>(gc), .u = ptr<T>(uc), .h0 = ptr<T>(hc)};
    kernels::LinAttnGrads<T> d{.dq = mptr<T>(r.dq),
                               .dk = mptr<T>(r.dk),
                               .dv = mptr<T>(r.dv),
                               .dg = mptr<T>(r.dg),
                               .du = mptr<T>(r.du),
                               .dh0 = mptr<T>(r.dh0)};
    const T *go = ptr<T>(doc), *gs = ptr<T>(dsc);
    switch (spec.form) {
      case LinearAttentionForm::recurrent:
        kernels::linear_attention_recurrent_backward(d, go, gs, in, n);
        break;
      case LinearAttentionForm::parallel:
        kernels::linear_attention_parallel_backward(d, go, gs, in, n);
        break;
      case LinearAttentionForm::chunked:
        kernels::linear_attention_chunked_backward(d, go, gs, in, n, spec.chunk, ptr<T>(starts));
        break;
    }
  });
  return r;
}

}  // namespace core
}  // namespace tz
