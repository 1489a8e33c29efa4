// Differentiable fused neural-network ops (ops.def section "fused neural-network ops").
// Each forward calls core/nn_ops.h and records a backward that calls the matching backward
// kernel; the formulas are in core/kernels/{softmax,norm,cross_entropy}.h.
#include "autograd/ops.h"
#include "core/nn_ops.h"

namespace tz {

// dx = y (dy - sum(dy y)), y = softmax(x): saves only the output.
Tensor softmax(const Tensor& x) {
  Tensor out = core::softmax(x);
  Tensor ys = out.detach();
  make_node(OpId::softmax, out, {x},
            [ys](const Tensor& g) { return std::vector<Tensor>{core::softmax_backward(g, ys)}; });
  return out;
}

// dx = dy - exp(y) sum(dy), y = log_softmax(x): saves only the output.
Tensor log_softmax(const Tensor& x) {
  Tensor out = core::log_softmax(x);
  Tensor ys = out.detach();
  make_node(OpId::log_softmax, out, {x},
            [ys](const Tensor& g) { return std::vector<Tensor>{core::log_softmax_backward(g, ys)}; });
  return out;
}

// Saves x, weight, and the per-row mean and rstd (not the normalised x: it is recomputed).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  core::NormForward f = core::layer_norm(x, weight, bias, eps);
  Tensor xs = x.detach(), ws = weight.defined() ? weight.detach() : Tensor();
  Tensor mean = f.mean, rstd = f.rstd;
  bool need_dx = x.requires_grad(), need_dw = weight.defined() && weight.requires_grad(),
       need_db = bias.defined() && bias.requires_grad();
  make_node(OpId::layer_norm, f.out, {x, weight, bias},
            [xs, ws, mean, rstd, need_dx, need_dw, need_db](const Tensor& g) {
              core::NormGrads r = core::layer_norm_backward(g, xs, ws, mean, rstd, need_dx, need_dw, need_db);
              return std::vector<Tensor>{r.dx, r.dweight, r.dbias};
            });
  return f.out;
}

// weight optional (Tensor() = none). Saves x, weight and the per-row rstd.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  core::NormForward f = core::rms_norm(x, weight, eps);
  Tensor xs = x.detach(), ws = weight.defined() ? weight.detach() : Tensor();
  Tensor rstd = f.rstd;
  bool need_dx = x.requires_grad(), need_dw = weight.defined() && weight.requires_grad();
  make_node(OpId::rms_norm, f.out, {x, weight}, [xs, ws, rstd, need_dx, need_dw](const Tensor& g) {
    core::NormGrads r = core::rms_norm_backward(g, xs, ws, rstd, need_dx, need_dw);
    return std::vector<Tensor>{r.dx, r.dweight};
  });
  return f.out;
}

// Saves the logits, targets and per-row log-sum-exp; dlogits = (softmax - onehot) g / count.
// All targets ignored: loss 0, gradient 0 (see core/nn_ops.h).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  core::CrossEntropyForward f = core::cross_entropy(logits, targets, ignore_index);
  Tensor xs = logits.detach(), ts = targets.detach(), lse = f.lse;
  int64_t count = f.count;
  make_node(OpId::cross_entropy, f.loss, {logits, targets}, [xs, ts, lse, ignore_index, count](const Tensor& g) {
    return std::vector<Tensor>{core::cross_entropy_backward(g, xs, ts, lse, ignore_index, count), Tensor()};
  });
  return f.loss;
}

// Saves no mask: backward regenerates it from (seed, first counter).
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  core::DropoutForward f = core::dropout(x, p, training, gen);
  if (f.identity) return f.out;  // x itself: no node
  uint64_t seed = f.seed, first = f.first;
  make_node(OpId::dropout, f.out, {x}, [p, seed, first](const Tensor& g) {
    return std::vector<Tensor>{core::dropout_backward(g, p, seed, first)};
  });
  return f.out;
}

}  // namespace tz
