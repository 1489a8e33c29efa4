// Tensor-level TTT-Linear dual form: see ttt.h.
#include "core/ttt.h"

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/ttt.h"

namespace tz::core {

namespace {
kernels::TttSizes sizes(const TttLinearInputs& in) {
  const Tensor& q = in.q;
  TZ_CHECK(q.defined() && in.k.defined() && in.v.defined() && in.eta.defined() && in.W0.defined() && in.b0.defined() &&
               in.ln_w.defined() && in.ln_b.defined(),
           "ttt_linear: every input must be defined (q, k, v, eta, W0, b0, ln_w, ln_b)");
  TZ_CHECK(q.dim() == 4 && in.k.shape() == q.shape() && in.v.shape() == q.shape() && q.size(3) > 0,
           "ttt_linear: expected q, k, v [B, H, T, D] with D > 0, got q ", q.shape(), ", k ", in.k.shape(), ", v ",
           in.v.shape());
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  TZ_CHECK(in.eta.shape() == Shape({B, H, T, 1}), "ttt_linear: eta must be [B, H, T, 1] = [", B, ", ", H, ", ", T,
           ", 1], got ", in.eta.shape());
  const int64_t wb = in.W0.dim() == 4 ? in.W0.size(0) : -1;
  TZ_CHECK((wb == 1 || wb == B) && in.W0.shape() == Shape({wb, H, D, D}) && in.b0.shape() == Shape({wb, H, 1, D}),
           "ttt_linear: W0 and b0 must be [1 or B, H, D, D] and [1 or B, H, 1, D] with B = ", B, ", H = ", H,
           ", D = ", D, ", got ", in.W0.shape(), " and ", in.b0.shape());
  TZ_CHECK(in.ln_w.shape() == Shape({1, H, 1, D}) && in.ln_b.shape() == Shape({1, H, 1, D}),
           "ttt_linear: ln_w and ln_b must be [1, H, 1, D] = [1, ", H, ", 1, ", D, "], got ", in.ln_w.shape(), " and ",
           in.ln_b.shape());
  const DType dt = q.dtype();
  for (const Tensor* t : {&in.k, &in.v, &in.eta, &in.W0, &in.b0, &in.ln_w, &in.ln_b})
    TZ_CHECK(is_floating(dt) && t->dtype() == dt, "ttt_linear: every input must have q's float dtype ", dtype_name(dt),
             ", got ", dtype_name(t->dtype()));
  TZ_CHECK(in.minibatch >= 1, "ttt_linear: minibatch must be >= 1, got ", in.minibatch);
  return {.B = B, .H = H, .T = T, .D = D, .minibatch = in.minibatch, .w_batched = wb == B && B > 1};
}

struct Contig {
  Tensor q, k, v, eta, W0, b0, ln_w, ln_b;
  explicit Contig(const TttLinearInputs& in)
      : q(contiguous(in.q)),
        k(contiguous(in.k)),
        v(contiguous(in.v)),
        eta(contiguous(in.eta)),
        W0(contiguous(in.W0)),
        b0(contiguous(in.b0)),
        ln_w(contiguous(in.ln_w)),
        ln_b(contiguous(in.ln_b)) {}
  template <class T>
  kernels::TttInputs<T> ptrs() const {
    return {q.data<T>(),  k.data<T>(),  v.data<T>(),    eta.data<T>(),
            W0.data<T>(), b0.data<T>(), ln_w.data<T>(), ln_b.data<T>()};
  }
};

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
}  // namespace

void check_ttt_linear(const TttLinearInputs& in) { sizes(in); }

Tensor ttt_linear_saved(const TttLinearInputs& in) {
  return empty({kernels::ttt_linear_saved_size(sizes(in))}, in.q.dtype());
}

void ttt_linear(const Tensor& z, const Tensor& W, const Tensor& b, const Tensor& loss, const Tensor& saved,
                const TttLinearInputs& in) {
  const kernels::TttSizes n = sizes(in);
  const DType dt = in.q.dtype();
  auto ok = [&](const Tensor& t, const Shape& s) {
    return t.defined() && t.is_contiguous() && t.dtype() == dt && t.shape() == s;
  };
  TZ_CHECK(ok(z, in.q.shape()) && ok(W, {n.B, n.H, n.D, n.D}) && ok(b, {n.B, n.H, 1, n.D}) && ok(loss, {n.B, n.H, n.T}),
           "ttt_linear: z, W, b, loss must be contiguous [B, H, T, D], [B, H, D, D], [B, H, 1, D], [B, H, T] of q's "
           "dtype");
  TZ_CHECK(!saved.defined() ||
               (saved.is_contiguous() && saved.dtype() == dt && saved.numel() == kernels::ttt_linear_saved_size(n)),
           "ttt_linear: saved must come from ttt_linear_saved for these inputs");
  const Contig c(in);
  TZ_DISPATCH_FLOAT(dt, "ttt_linear", [&]<class T>() {
    kernels::ttt_linear_forward<T>({z.data<T>(), W.data<T>(), b.data<T>(), loss.data<T>(), ptr_or_null<T>(saved)},
                                   c.ptrs<T>(), n);
  });
}

TttLinearGrads ttt_linear_backward(const Tensor& dz, const Tensor& dW, const Tensor& db, const Tensor& dloss,
                                   const Tensor& saved, const TttLinearInputs& in) {
  const kernels::TttSizes n = sizes(in);
  const DType dt = in.q.dtype();
  TZ_CHECK(saved.defined() && saved.dtype() == dt && saved.numel() == kernels::ttt_linear_saved_size(n),
           "ttt_linear backward: saved must come from the forward's ttt_linear_saved");
  auto grad = [&](const Tensor& g, const Shape& s, const char* name) {
    if (!g.defined()) return Tensor();
    TZ_CHECK(g.shape() == s, "ttt_linear backward: the gradient of ", name, " must be ", s, ", got ", g.shape());
    return contiguous_as(g, dt);
  };
  Tensor z_ = grad(dz, in.q.shape(), "z"), W_ = grad(dW, {n.B, n.H, n.D, n.D}, "W"),
         b_ = grad(db, {n.B, n.H, 1, n.D}, "b"), l_ = grad(dloss, {n.B, n.H, n.T}, "loss");
  const Contig c(in);
  TttLinearGrads r{empty(in.q.shape(), dt),    empty(in.k.shape(), dt),   empty(in.v.shape(), dt),
                   empty(in.eta.shape(), dt),  empty(in.W0.shape(), dt),  empty(in.b0.shape(), dt),
                   empty(in.ln_w.shape(), dt), empty(in.ln_b.shape(), dt)};  // the kernel writes every element
  TZ_DISPATCH_FLOAT(dt, "ttt_linear backward", [&]<class T>() {
    kernels::ttt_linear_backward<T>({r.dq.data<T>(), r.dk.data<T>(), r.dv.data<T>(), r.deta.data<T>(), r.dW0.data<T>(),
                                     r.db0.data<T>(), r.dln_w.data<T>(), r.dln_b.data<T>()},
                                    ptr_or_null<T>(z_), ptr_or_null<T>(W_), ptr_or_null<T>(b_), ptr_or_null<T>(l_),
                                    saved.data<T>(), c.ptrs<T>(), n);
  });
  return r;
}

}  // namespace tz::core
