// Tensor-level fused attention: see attention.h.
#include "core/attention.h"

#include <cmath>

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/attention.h"

namespace tz::core {

namespace {
void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t q_offset) {
  TZ_CHECK(q.defined() && k.defined() && v.defined(), "attention: undefined q, k or v");
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: expected q [B, H, T, D] and "
           "k, v [B, H, S, D], got q ", q.shape(), ", k ", k.shape(), ", v ", v.shape());
  TZ_CHECK(k.shape() == v.shape() && q.size(0) == k.size(0) && q.size(1) == k.size(1) &&
               q.size(3) == k.size(3),
           "attention: shape mismatch, q ", q.shape(), " k ", k.shape(), " v ", v.shape(),
           " (expected q [B, H, T, D], k and v [B, H, S, D])");
  TZ_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "attention: dtypes differ, q ",
           dtype_name(q.dtype()), " k ", dtype_name(k.dtype()), " v ", dtype_name(v.dtype()));
  TZ_CHECK(q.size(3) > 0, "attention: head dim D must be > 0, got q ", q.shape());
  TZ_CHECK(!causal || q_offset >= 0, "attention: q_offset must be >= 0 when causal, got ", q_offset);
}

// The tensor itself when its last dim is contiguous (rows readable in place), else a copy.
Tensor rows_view(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype && (t.stride(3) == 1 || t.size(3) == 1)) return t;
  return contiguous_as(t, dtype);
}

template <class T>
kernels::AttnRows<T> rows_of(const Tensor& t) {
  return {static_cast<T*>(t.raw_data()), t.stride(0), t.stride(1), t.stride(2)};
}

// A [B, H, N, D] tensor stored as [B, N, H, D] (zeros when `zero`).
Tensor head_interleaved(int64_t B, int64_t H, int64_t N, int64_t D, DType dtype, bool zero) {
  Tensor base = zero ? zeros({B, N, H, D}, dtype) : empty({B, N, H, D}, dtype);
  return as_strided(base, {B, H, N, D}, {N * H * D, D, H * D, 1}, 0);
}

kernels::AttnSizes sizes_of(const Tensor& q, const Tensor& k, bool causal, int64_t q_offset, double scale) {
  const int64_t D = q.size(3);
  return kernels::AttnSizes{.B = q.size(0), .H = q.size(1), .T = q.size(2), .S = k.size(2), .D = D,
                            .q_offset = q_offset, .causal = causal,
                            .scale = scale == 0 ? 1.0 / std::sqrt(double(D)) : scale};
}
}  // namespace

AttentionForward attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                           int64_t q_offset, double scale, bool reference) {
  check_inputs(q, k, v, causal, q_offset);
  TZ_CHECK(k.size(2) > 0 || q.size(2) == 0, "attention: no keys (S = 0) for ", q.size(2), " queries");
  const kernels::AttnSizes n = sizes_of(q, k, causal, q_offset, scale);
  Tensor qr = rows_view(q, q.dtype()), kr = rows_view(k, q.dtype()), vr = rows_view(v, q.dtype());
  Tensor out = head_interleaved(n.B, n.H, n.T, n.D, q.dtype(), false);
  Tensor lse = empty({n.B, n.H, n.T}, q.dtype());
  TZ_DISPATCH_FLOAT(q.dtype(), "attention", [&]<class T>() {
    if (q.numel() == 0) return;
    auto fwd = reference ? &kernels::attention_forward_ref<T> : &kernels::attention_forward<T>;
    fwd(rows_of<T>(out), static_cast<T*>(lse.raw_data()), rows_of<const T>(qr), rows_of<const T>(kr),
        rows_of<const T>(vr), n);
  });
  return {out, lse};
}

AttentionGrads attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, bool causal,
                                  int64_t q_offset, double scale, bool reference) {
  check_inputs(q, k, v, causal, q_offset);
  TZ_CHECK(g.shape() == q.shape() && out.shape() == q.shape(), "attention backward: gradient ",
           g.shape(), " and output ", out.shape(), " must match q ", q.shape());
  TZ_CHECK(lse.shape() == Shape({q.size(0), q.size(1), q.size(2)}) && lse.dtype() == q.dtype(),
           "attention backward: lse ", lse.shape(), " does not match q ", q.shape());
  const kernels::AttnSizes n = sizes_of(q, k, causal, q_offset, scale);
  const DType dt = q.dtype();
  Tensor qr = rows_view(q, dt), kr = rows_view(k, dt), vr = rows_view(v, dt);
  Tensor gr = rows_view(g, dt), outr = rows_view(out, dt), lser = contiguous(lse);
  AttentionGrads r{head_interleaved(n.B, n.H, n.T, n.D, dt, true),
                   head_interleaved(n.B, n.H, n.S, n.D, dt, true),
                   head_interleaved(n.B, n.H, n.S, n.D, dt, true)};
  TZ_DISPATCH_FLOAT(dt, "attention backward", [&]<class T>() {
    if (q.numel() == 0 || k.numel() == 0) return;
    auto bwd = reference ? &kernels::attention_backward_ref<T> : &kernels::attention_backward<T>;
    bwd(rows_of<T>(r.dq), rows_of<T>(r.dk), rows_of<T>(r.dv), rows_of<const T>(outr),
        static_cast<const T*>(lser.raw_data()), rows_of<const T>(gr), rows_of<const T>(qr),
        rows_of<const T>(kr), rows_of<const T>(vr), n);
  });
  return r;
}

}  // namespace tz::core
