// Tensor-level causal long convolution: see long_conv.h.
#include "core/long_conv.h"

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/long_conv.h"

namespace tz::core {

namespace {
void check_long_conv(const Tensor& u, const Tensor& k, const Tensor& D) {
  TZ_CHECK(u.defined() && k.defined(), "long_conv: u and k must be defined");
  TZ_CHECK(u.dim() == 3, "long_conv: u must be [B, C, L], got ", u.shape());
  const int64_t C = u.size(1), L = u.size(2);
  TZ_CHECK(k.shape() == Shape({C, L}), "long_conv: k must be [C, L] = [", C, ", ", L, "] for u ", u.shape(), ", got ",
           k.shape());
  TZ_CHECK(k.dtype() == u.dtype(), "long_conv: k is ", dtype_name(k.dtype()), ", expected ", dtype_name(u.dtype()),
           " like u");
  if (D.defined()) {
    TZ_CHECK(D.shape() == Shape({C}), "long_conv: D must be [C] = [", C, "] for u ", u.shape(), ", got ", D.shape());
    TZ_CHECK(D.dtype() == u.dtype(), "long_conv: D is ", dtype_name(D.dtype()), ", expected ", dtype_name(u.dtype()),
             " like u");
  }
}
}  // namespace

Tensor long_conv(const Tensor& u, const Tensor& k, const Tensor& D, const LongConvOptions& o) {
  check_long_conv(u, k, D);
  const int64_t B = u.size(0), C = u.size(1), L = u.size(2);
  Tensor uc = contiguous(u), kc = contiguous(k), Dc = D.defined() ? contiguous(D) : Tensor();
  Tensor y = empty(u.shape(), u.dtype());
  TZ_DISPATCH_FLOAT(u.dtype(), "long_conv", [&]<class F>() {
    const F* Dp = Dc.defined() ? Dc.data<F>() : nullptr;
    if (o.reference)
      kernels::long_conv_forward_ref<F>(y.data<F>(), uc.data<F>(), kc.data<F>(), Dp, B, C, L);
    else
      kernels::long_conv_forward<F>(y.data<F>(), uc.data<F>(), kc.data<F>(), Dp, B, C, L);
  });
  return y;
}

Tensor long_conv_tail(const Tensor& u, const Tensor& k, const Tensor& D, int64_t T) {
  TZ_CHECK(u.defined() && k.defined(), "long_conv_tail: u and k must be defined");
  TZ_CHECK(u.dim() == 3, "long_conv_tail: u must be [B, L, C] (time-major), got ", u.shape());
  const int64_t B = u.size(0), L = u.size(1), C = u.size(2);
  TZ_CHECK(k.shape() == Shape({L, C}), "long_conv_tail: k must be [L, C] = [", L, ", ", C, "] for u ", u.shape(),
           ", got ", k.shape());
  TZ_CHECK(T >= 0 && T <= L, "long_conv_tail: T must be in [0, L = ", L, "], got ", T);
  TZ_CHECK(k.dtype() == u.dtype(), "long_conv_tail: k is ", dtype_name(k.dtype()), ", expected ", dtype_name(u.dtype()),
           " like u");
  if (D.defined()) {
    TZ_CHECK(D.shape() == Shape({C}), "long_conv_tail: D must be [C] = [", C, "] for u ", u.shape(), ", got ",
             D.shape());
    TZ_CHECK(D.dtype() == u.dtype(), "long_conv_tail: D is ", dtype_name(D.dtype()), ", expected ",
             dtype_name(u.dtype()), " like u");
  }
  // a batch stride is allowed (a view of the first L rows of a longer history is not copied)
  Tensor uc = u.stride(2) == 1 && u.stride(1) == C ? u : contiguous(u);
  Tensor kc = contiguous(k), Dc = D.defined() ? contiguous(D) : Tensor();
  Tensor y = empty({B, T, C}, u.dtype());
  TZ_DISPATCH_FLOAT(u.dtype(), "long_conv_tail", [&]<class F>() {
    kernels::long_conv_tail<F>(y.data<F>(), uc.data<F>(), uc.stride(0), kc.data<F>(),
                               Dc.defined() ? Dc.data<F>() : nullptr, B, C, L, T);
  });
  return y;
}

LongConvGrads long_conv_backward(const Tensor& g, const Tensor& u, const Tensor& k, const Tensor& D,
                                 const LongConvOptions& o) {
  check_long_conv(u, k, D);
  TZ_CHECK(g.shape() == u.shape(), "long_conv_backward: grad of shape ", g.shape(), ", expected ", u.shape());
  const int64_t B = u.size(0), C = u.size(1), L = u.size(2);
  Tensor gc = contiguous_as(g, u.dtype()), uc = contiguous(u), kc = contiguous(k);
  Tensor Dc = D.defined() ? contiguous(D) : Tensor();
  LongConvGrads r{.du = zeros(u.shape(), u.dtype()), .dk = zeros(k.shape(), u.dtype())};
  if (D.defined()) r.dD = zeros(D.shape(), u.dtype());
  TZ_DISPATCH_FLOAT(u.dtype(), "long_conv_backward", [&]<class F>() {
    const F* Dp = Dc.defined() ? Dc.data<F>() : nullptr;
    F* dD = r.dD.defined() ? r.dD.data<F>() : nullptr;
    if (o.reference)
      kernels::long_conv_backward_ref<F>(r.du.data<F>(), r.dk.data<F>(), dD, gc.data<F>(), uc.data<F>(), kc.data<F>(),
                                         Dp, B, C, L);
    else
      kernels::long_conv_backward<F>(r.du.data<F>(), r.dk.data<F>(), dD, gc.data<F>(), uc.data<F>(), kc.data<F>(), Dp,
                                     B, C, L);
  });
  return r;
}

}  // namespace tz::core
