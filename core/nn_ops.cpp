// Tensor-level softmax, log_softmax, layer_norm, rms_norm, cross_entropy, dropout: see
// nn_ops.h. Each function: check shapes/dtypes, make the rows contiguous, call the kernel.
#include "core/nn_ops.h"

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/cross_entropy.h"
#include "core/kernels/norm.h"
#include "core/kernels/softmax.h"
#include "core/parallel.h"

namespace tz::core {

namespace {
template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

// Rows of the last dim: C = last size (1 for a 0-d tensor), N = numel / C.
void rows(const Tensor& x, int64_t& N, int64_t& C) {
  C = x.dim() == 0 ? 1 : x.shape().back();
  N = C == 0 ? 0 : x.numel() / C;
  if (C == 0) {
    N = 1;
    for (int64_t d = 0; d + 1 < x.dim(); ++d) N *= x.shape()[size_t(d)];
  }
}

Shape leading(const Tensor& x) { return x.dim() == 0 ? Shape{} : Shape(x.shape().begin(), x.shape().end() - 1); }

// A [C] parameter (weight or bias) of x's dtype, or undefined.
void check_param(const Tensor& p, const Tensor& x, int64_t C, const char* op, const char* name) {
  if (!p.defined()) return;
  TZ_CHECK(p.shape() == Shape{C}, op, ": ", name, " of shape ", p.shape(), " does not match the ",
           "last dim of the input ", x.shape(), ", expected [", C, "]");
  TZ_CHECK(p.dtype() == x.dtype(), op, ": ", name, " dtype ", dtype_name(p.dtype()), " does not match the input dtype ",
           dtype_name(x.dtype()));
}

void check_same(const Tensor& g, const Tensor& ref, const char* op) {
  TZ_CHECK(g.shape() == ref.shape(), op, ": gradient of shape ", g.shape(), " for an output of shape ", ref.shape());
}

template <class Fwd>
Tensor rowwise(const Tensor& x, const char* op, Fwd fwd) {
  TZ_CHECK(x.defined(), op, ": undefined input");
  int64_t N, C;
  rows(x, N, C);
  Tensor xc = contiguous(x), out = empty(x.shape(), x.dtype());
  return TZ_DISPATCH_FLOAT(x.dtype(), op, [&]<class T>() {
    if (x.numel() > 0) fwd(ptr<T>(out), ptr<T>(xc), N, C);
    return out;
  });
}

template <class Bwd>
Tensor rowwise_backward(const Tensor& g, const Tensor& out, const char* op, Bwd bwd) {
  check_same(g, out, op);
  int64_t N, C;
  rows(out, N, C);
  Tensor gc = contiguous_as(g, out.dtype()), oc = contiguous(out), d = zeros(out.shape(), out.dtype());
  return TZ_DISPATCH_FLOAT(out.dtype(), op, [&]<class T>() {
    if (out.numel() > 0) bwd(ptr<T>(d), ptr<T>(gc), ptr<T>(oc), N, C);
    return d;
  });
}
}  // namespace

// ---- softmax / log_softmax ---------------------------------------------------------------

Tensor softmax(const Tensor& x) {
  return rowwise(x, "softmax",
                 []<class T>(T* y, const T* xp, int64_t N, int64_t C) { kernels::softmax_forward<T>(y, xp, N, C); });
}
Tensor softmax_backward(const Tensor& g, const Tensor& out) {
  return rowwise_backward(g, out, "softmax backward", []<class T>(T* d, const T* gp, const T* y, int64_t N, int64_t C) {
    kernels::softmax_backward<T>(d, gp, y, N, C);
  });
}
Tensor log_softmax(const Tensor& x) {
  return rowwise(x, "log_softmax", []<class T>(T* y, const T* xp, int64_t N, int64_t C) {
    kernels::log_softmax_forward<T>(y, xp, N, C);
  });
}
Tensor log_softmax_backward(const Tensor& g, const Tensor& out) {
  return rowwise_backward(g, out, "log_softmax backward",
                          []<class T>(T* d, const T* gp, const T* y, int64_t N, int64_t C) {
                            kernels::log_softmax_backward<T>(d, gp, y, N, C);
                          });
}

// ---- layer_norm / rms_norm ---------------------------------------------------------------

NormForward layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  TZ_CHECK(x.dim() >= 1, "layer_norm: expected at least 1 dim, got a 0-d tensor");
  TZ_CHECK(eps >= 0, "layer_norm: eps must be >= 0, got ", eps);
  int64_t N, C;
  rows(x, N, C);
  check_param(weight, x, C, "layer_norm", "weight");
  check_param(bias, x, C, "layer_norm", "bias");
  NormForward r{empty(x.shape(), x.dtype()), empty(leading(x), x.dtype()), empty(leading(x), x.dtype())};
  Tensor xc = contiguous(x), wc = weight.defined() ? contiguous(weight) : Tensor(),
         bc = bias.defined() ? contiguous(bias) : Tensor();
  TZ_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&]<class T>() {
    if (N > 0)
      kernels::layernorm_forward<T>(ptr<T>(r.out), ptr<T>(r.mean), ptr<T>(r.rstd), ptr<T>(xc), ptr<T>(wc), ptr<T>(bc),
                                    N, C, eps);
    return 0;
  });
  return r;
}

NormGrads layer_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight, const Tensor& mean,
                              const Tensor& rstd, bool need_dx, bool need_dweight, bool need_dbias) {
  check_same(g, x, "layer_norm backward");
  int64_t N, C;
  rows(x, N, C);
  NormGrads r;
  if (need_dx) r.dx = zeros(x.shape(), x.dtype());
  if (need_dweight && weight.defined()) r.dweight = zeros({C}, x.dtype());
  if (need_dbias) r.dbias = zeros({C}, x.dtype());
  Tensor gc = contiguous_as(g, x.dtype()), xc = contiguous(x), wc = weight.defined() ? contiguous(weight) : Tensor();
  TZ_DISPATCH_FLOAT(x.dtype(), "layer_norm backward", [&]<class T>() {
    if (N > 0)
      kernels::layernorm_backward<T>(ptr<T>(r.dx), ptr<T>(r.dweight), ptr<T>(r.dbias), ptr<T>(gc), ptr<T>(xc),
                                     ptr<T>(wc), ptr<T>(mean), ptr<T>(rstd), N, C);
    return 0;
  });
  return r;
}

NormForward rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  TZ_CHECK(x.dim() >= 1, "rms_norm: expected at least 1 dim, got a 0-d tensor");
  TZ_CHECK(eps >= 0, "rms_norm: eps must be >= 0, got ", eps);
  int64_t N, C;
  rows(x, N, C);
  check_param(weight, x, C, "rms_norm", "weight");
  NormForward r{empty(x.shape(), x.dtype()), Tensor(), empty(leading(x), x.dtype())};
  Tensor xc = contiguous(x), wc = weight.defined() ? contiguous(weight) : Tensor();
  TZ_DISPATCH_FLOAT(x.dtype(), "rms_norm", [&]<class T>() {
    if (N > 0) kernels::rmsnorm_forward<T>(ptr<T>(r.out), ptr<T>(r.rstd), ptr<T>(xc), ptr<T>(wc), N, C, eps);
    return 0;
  });
  return r;
}

NormGrads rms_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight, const Tensor& rstd, bool need_dx,
                            bool need_dweight) {
  check_same(g, x, "rms_norm backward");
  int64_t N, C;
  rows(x, N, C);
  NormGrads r;
  if (need_dx) r.dx = zeros(x.shape(), x.dtype());
  if (need_dweight && weight.defined()) r.dweight = zeros({C}, x.dtype());
  Tensor gc = contiguous_as(g, x.dtype()), xc = contiguous(x), wc = weight.defined() ? contiguous(weight) : Tensor();
  TZ_DISPATCH_FLOAT(x.dtype(), "rms_norm backward", [&]<class T>() {
    if (N > 0)
      kernels::rmsnorm_backward<T>(ptr<T>(r.dx), ptr<T>(r.dweight), ptr<T>(gc), ptr<T>(xc), ptr<T>(wc), ptr<T>(rstd), N,
                                   C);
    return 0;
  });
  return r;
}

// ---- cross_entropy -----------------------------------------------------------------------

CrossEntropyForward cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  TZ_CHECK(logits.dim() >= 1, "cross_entropy: logits must have a class dim [..., V], got a 0-d tensor");
  TZ_CHECK(targets.dtype() == DType::i64, "cross_entropy: targets must be i64 class ids, got ",
           dtype_name(targets.dtype()));
  TZ_CHECK(targets.shape() == leading(logits), "cross_entropy: targets of shape ", targets.shape(),
           " do not match logits of shape ", logits.shape(), " (expected targets ", leading(logits), ")");
  int64_t N, V;
  rows(logits, N, V);
  Tensor tc = contiguous(targets);
  const int64_t* t = ptr<int64_t>(tc);
  CrossEntropyForward r;
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == ignore_index) continue;
    TZ_CHECK(t[n] >= 0 && t[n] < V, "cross_entropy: target ", t[n], " at position ", n, " is out of range for V = ", V,
             " classes (ignore_index = ", ignore_index, ")");
    ++r.count;
  }
  Tensor xc = contiguous(logits);
  r.lse = empty({N}, logits.dtype());
  r.loss = empty({}, logits.dtype());
  TZ_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&]<class T>() {
    Tensor losses = empty({N}, logits.dtype());
    if (N > 0) kernels::cross_entropy_forward<T>(ptr<T>(losses), ptr<T>(r.lse), ptr<T>(xc), t, N, V, ignore_index);
    // Mean over counted rows, summed in f64 in row order (deterministic).
    double s = 0;
    const T* l = ptr<T>(losses);
    for (int64_t n = 0; n < N; ++n) s += double(l[n]);
    *ptr<T>(r.loss) = r.count > 0 ? T(s / double(r.count)) : T(0);
    return 0;
  });
  return r;
}

Tensor cross_entropy_backward(const Tensor& g, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                              int64_t ignore_index, int64_t count) {
  TZ_CHECK(g.numel() == 1, "cross_entropy backward: expected a one-element gradient, got ", g.shape());
  int64_t N, V;
  rows(logits, N, V);
  Tensor d = zeros(logits.shape(), logits.dtype());
  if (count == 0 || N == 0) return d;  // every target ignored: zero gradient
  double scale = g.item() / double(count);
  Tensor xc = contiguous(logits), tc = contiguous(targets);
  TZ_DISPATCH_FLOAT(logits.dtype(), "cross_entropy backward", [&]<class T>() {
    kernels::cross_entropy_backward<T>(ptr<T>(d), ptr<T>(xc), ptr<T>(lse), ptr<int64_t>(tc), scale, N, V, ignore_index);
    return 0;
  });
  return d;
}

// ---- dropout -----------------------------------------------------------------------------

namespace {
// out[i] = keep(i) ? in[i] * scale : 0, keep(i) = uniform(first + i) >= p. Each element's
// coin depends only on its counter, so any split over threads gives the same mask.
template <class T>
void dropout_apply(T* out, const T* in, int64_t n, double p, uint64_t seed, uint64_t first) {
  Generator gen(seed);
  T scale = T(1.0 / (1.0 - p));
  parallel_for(n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = gen.uniform_at(first + uint64_t(i)) >= p ? in[i] * scale : T(0);
  });
}
}  // namespace

DropoutForward dropout(const Tensor& x, double p, bool training, Generator& gen) {
  TZ_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  TZ_CHECK(is_floating(x.dtype()), "dropout: expected a floating dtype (f32 or f64), got ", dtype_name(x.dtype()));
  DropoutForward r;
  if (p == 0 || !training) {
    r.out = x;
    return r;
  }
  r.identity = false;
  r.seed = gen.seed();
  r.first = gen.advance(uint64_t(x.numel()));
  Tensor xc = contiguous(x);
  r.out = empty(x.shape(), x.dtype());
  TZ_DISPATCH_FLOAT(x.dtype(), "dropout", [&]<class T>() {
    dropout_apply<T>(ptr<T>(r.out), ptr<T>(xc), x.numel(), p, r.seed, r.first);
    return 0;
  });
  return r;
}

Tensor dropout_backward(const Tensor& g, double p, uint64_t seed, uint64_t first) {
  Tensor gc = contiguous(g), d = empty(g.shape(), g.dtype());
  TZ_DISPATCH_FLOAT(g.dtype(), "dropout backward", [&]<class T>() {
    dropout_apply<T>(ptr<T>(d), ptr<T>(gc), g.numel(), p, seed, first);
    return 0;
  });
  return d;
}

}  // namespace tz::core
