// TTT's inner model and one mini-batch of its training: see ttt_inner.h.
#include "nn/linear_rnn/ttt_inner.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/error.h"

namespace tz::nn {

namespace {
constexpr double kLnEps = 1e-6;

// LN over the last dim, written in ops (its backward below must itself be differentiable).
struct Ln {
  Tensor y, zh, inv;  // γ ẑ + β, ẑ, 1 / σ
};
Ln ln(const Tensor& z, const Tensor& g, const Tensor& b) {
  Tensor zc = z - mean(z, {-1}, true);
  Tensor inv = rsqrt(mean(zc * zc, {-1}, true) + kLnEps);
  Tensor zh = zc * inv;
  return {zh * g + b, zh, inv};
}
// The gradient at z of <e, LN(z)>.
Tensor ln_backward(const Ln& l, const Tensor& e, const Tensor& g) {
  Tensor ge = e * g;
  return l.inv * (ge - mean(ge, {-1}, true) - l.zh * mean(ge * l.zh, {-1}, true));
}
// GELU (tanh form) and its derivative: u = c (x + 0.044715 x^3), GELU = x (1 + tanh u) / 2.
constexpr double kC = 0.7978845608028654, kA = 0.044715;
Tensor gelu_grad(const Tensor& x) {
  Tensor th = tanh((x + x * x * x * kA) * kC);
  return (th + 1.0) * 0.5 + x * (1.0 - th * th) * ((x * x * (3 * kA) + 1.0) * (0.5 * kC));
}
Tensor mm(const Tensor& a, const Tensor& b) { return matmul(a, b); }
Tensor tr(const Tensor& a) { return a.transpose(-1, -2); }

// What the mini-batch's gradients need, at its start weights W0.
struct Grads {
  Tensor loss;   // [B, H, L]
  Tensor g2, a;  // g of the last layer; the MLP's hidden activations (its layer-2 keys)
  Tensor g1;     // the MLP's layer-1 g
};
Grads grads_at(TttKind kind, const Tensor& k, const Tensor& v, const TttWeights& w0, const Tensor& lw,
               const Tensor& lb) {
  Grads r;
  Tensor z, z1;
  if (kind == TttKind::linear) {
    z = mm(k, w0.w[0]) + w0.w[1];
  } else {
    z1 = mm(k, w0.w[0]) + w0.w[1];
    r.a = gelu_tanh(z1);
    z = mm(r.a, w0.w[2]) + w0.w[3];
  }
  Ln l = ln(z, lw, lb);
  Tensor e = l.y + k - v;  // f(k) - v
  r.loss = sum(e * e, {-1});
  r.g2 = ln_backward(l, e * 2.0, lw);
  if (kind == TttKind::mlp) r.g1 = mm(r.g2, tr(w0.w[2])) * gelu_grad(z1);
  return r;
}

TttSegment dual(TttKind kind, const Tensor& q, const Tensor& k, const Tensor& eta, const Grads& gr,
                const TttWeights& wc) {
  TttSegment s;
  auto layer = [&](const Tensor& xq, const Tensor& xk, const Tensor& g, const Tensor& W, const Tensor& b, Tensor& W1,
                   Tensor& b1) {
    Tensor G = eta * g;
    W1 = W - mm(tr(xk), G);
    b1 = b - sum(G, {2}, true);
    return mm(xq, W) + b - mm(tril(mm(xq, tr(xk))), G) - cumsum(G, 2);
  };
  if (kind == TttKind::linear) {
    s.next.w.resize(2);
    s.z = layer(q, k, gr.g2, wc.w[0], wc.w[1], s.next.w[0], s.next.w[1]);
  } else {
    s.next.w.resize(4);
    Tensor aq = gelu_tanh(layer(q, k, gr.g1, wc.w[0], wc.w[1], s.next.w[0], s.next.w[1]));
    s.z = layer(aq, gr.a, gr.g2, wc.w[2], wc.w[3], s.next.w[2], s.next.w[3]);
  }
  return s;
}

TttSegment primal(TttKind kind, const Tensor& q, const Tensor& k, const Tensor& eta, const Grads& gr,
                  const TttWeights& wc) {
  TttSegment s;
  s.next = wc;
  std::vector<Tensor> outs;
  const int64_t L = q.size(2);
  for (int64_t t = 0; t < L; ++t) {  // W_t = W_{t-1} - η_t ∇ℓ(W0; t), then z_t = f_res(q_t; W_t)
    Tensor et = eta.narrow(2, t, 1), kt = k.narrow(2, t, 1), qt = q.narrow(2, t, 1);
    std::vector<Tensor>& w = s.next.w;
    Tensor g2 = gr.g2.narrow(2, t, 1);
    if (kind == TttKind::linear) {
      w[0] = w[0] - et * mm(tr(kt), g2);
      w[1] = w[1] - et * g2;
      outs.push_back(mm(qt, w[0]) + w[1]);
    } else {
      Tensor g1 = gr.g1.narrow(2, t, 1), at = gr.a.narrow(2, t, 1);
      w[0] = w[0] - et * mm(tr(kt), g1);
      w[1] = w[1] - et * g1;
      w[2] = w[2] - et * mm(tr(at), g2);
      w[3] = w[3] - et * g2;
      outs.push_back(mm(gelu_tanh(mm(qt, w[0]) + w[1]), w[2]) + w[3]);
    }
  }
  s.z = cat(outs, 2);
  return s;
}
}  // namespace

TttSegment ttt_segment(TttKind kind, TttForm form, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& eta,
                       const TttWeights& w0, const TttWeights& wc, const Tensor& lw, const Tensor& lb) {
  const size_t nw = kind == TttKind::linear ? 2 : 4;
  TZ_CHECK(w0.w.size() == nw && wc.w.size() == nw, "ttt: expected ", nw, " inner weight tensors, got ", w0.w.size(),
           " and ", wc.w.size());
  TZ_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.shape() == q.shape() && eta.dim() == 4 && eta.size(3) == 1 &&
               eta.size(2) == q.size(2),
           "ttt: expected q, k, v [B, H, L, D] and eta [B, H, L, 1], got q ", q.shape(), ", k ", k.shape(), ", v ",
           v.shape(), ", eta ", eta.shape());
  Grads gr = grads_at(kind, k, v, w0, lw, lb);
  TttSegment s = form == TttForm::dual ? dual(kind, q, k, eta, gr, wc) : primal(kind, q, k, eta, gr, wc);
  s.z = q + ln(s.z, lw, lb).y;
  s.loss = gr.loss;
  return s;
}

Tensor ttt_inner_loss(TttKind kind, const Tensor& k, const Tensor& v, const TttWeights& w, const Tensor& lw,
                      const Tensor& lb) {
  return grads_at(kind, k, v, w, lw, lb).loss;
}

}  // namespace tz::nn
