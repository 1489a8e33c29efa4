// Differentiable indexing and joining: embedding, index_select, gather, scatter_add, cat,
// conv1d_causal, and the sorting functions whose values carry gradients (topk, sort).
//
// Each forward calls the core function (core/index.h, which checks its inputs) and records
// the backward next to it. Backward formulas:
//   embedding     dweight = scatter-add of dy rows into a zero [V, C] table (ids repeat: sum)
//   index_select  dx = zeros with dy's slices added at index (repeated indices accumulate)
//   gather        dx = scatter_add(zeros_like(x), dim, index, dy)
//   scatter_add   dx = dy;  dsrc = gather(dy, dim, index) (zero where index does not reach)
//   cat           dx_j = the j-th narrow of dy along dim
//   conv1d_causal dx, dweight, dbias from the kernels in core/kernels/conv1d.h
//   topk, sort    values = gather(x, dim, indices), so their gradient is gather's
// The i64 index inputs get no gradient (Tensor()).
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/index.h"

namespace tz {

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  Tensor out = core::embedding(weight, ids);
  const int64_t V = weight.size(0);
  make_node(OpId::embedding, out, {weight, ids}, [ids = ids.detach(), V](const Tensor& g) {
    return std::vector<Tensor>{core::embedding_backward(g, ids, V), Tensor()};
  });
  return out;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = core::index_select(x, dim, index);
  const int64_t d = wrap_dim(dim, x.dim(), "index_select");
  make_node(OpId::index_select, out, {x, index}, [index = index.detach(), shape = x.shape(), d](const Tensor& g) {
    return std::vector<Tensor>{core::index_select_backward(g, shape, d, index), Tensor()};
  });
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = core::gather(x, dim, index);
  const int64_t d = wrap_dim(dim, x.dim(), "gather");
  make_node(OpId::gather, out, {x, index}, [index = index.detach(), shape = x.shape(), d](const Tensor& g) {
    Tensor dx = core::scatter_add(zeros(shape, g.dtype()), d, index, g);
    return std::vector<Tensor>{dx, Tensor()};
  });
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = core::scatter_add(x, dim, index, src);
  const int64_t d = wrap_dim(dim, x.dim(), "scatter_add");
  const bool need_src = src.requires_grad();
  make_node(OpId::scatter_add, out, {x, index, src},
            [index = index.detach(), src_shape = src.shape(), d, need_src](const Tensor& g) {
              Tensor dsrc;
              if (need_src) {
                dsrc = core::gather(g, d, index);  // index's shape
                if (src_shape != index.shape()) {  // src entries that index does not reach: 0
                  Tensor full_grad = zeros(src_shape, g.dtype());
                  core::copy_(as_strided(full_grad, index.shape(), full_grad.strides(), 0), dsrc);
                  dsrc = full_grad;
                }
              }
              return std::vector<Tensor>{g, Tensor(), dsrc};
            });
  return out;
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  Tensor out = core::cat(xs, dim);
  const int64_t d = wrap_dim(dim, xs[0].dim(), "cat");
  std::vector<int64_t> sizes;
  for (const Tensor& x : xs) sizes.push_back(x.size(d));
  make_node(OpId::cat, out, xs, [sizes, d](const Tensor& g) {
    std::vector<Tensor> grads;
    int64_t start = 0;
    for (int64_t n : sizes) {
      grads.push_back(g.narrow(d, start, n));  // a view of g
      start += n;
    }
    return grads;
  });
  return out;
}

Tensor conv1d_causal(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  Tensor out = core::conv1d_causal(x, weight, bias);
  const bool need_dx = x.requires_grad(), need_dw = weight.requires_grad(),
             need_db = bias.defined() && bias.requires_grad();
  make_node(OpId::conv1d_causal, out, {x, weight, bias},
            [x = x.detach(), w = weight.detach(), need_dx, need_dw, need_db](const Tensor& g) {
              core::Conv1dGrads r = core::conv1d_causal_backward(g, x, w, need_dx, need_dw, need_db);
              return std::vector<Tensor>{r.dx, r.dweight, r.dbias};
            });
  return out;
}

// The rolling conv state: convolve [state, x] and keep the outputs of x's positions.
Tensor conv1d_causal_continue(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& state) {
  const int64_t T = x.size(1), K = weight.size(1);
  TZ_CHECK(state.defined() && state.dim() == 3 && state.size(0) == x.size(0) && state.size(1) == K - 1 &&
               state.size(2) == x.size(2),
           "conv1d_causal_continue: state must be [B, K - 1, C] = [", x.size(0), ", ", K - 1, ", ", x.size(2),
           "], got ", state.defined() ? state.shape() : Shape{});
  if (K == 1) return conv1d_causal(x, weight, bias);
  Tensor seq = cat({state, x}, 1);
  state = seq.narrow(1, T, K - 1).contiguous();
  return conv1d_causal(seq, weight, bias).narrow(1, K - 1, T);
}

// ---- sorting: indices from the core kernels, values via gather when grad is needed ---------

namespace {
// x gathered at `indices` along dim, recorded as a gather node (0-d x: as a 1-vector).
Tensor values_by_gather(const Tensor& x, int64_t dim, const Tensor& indices) {
  if (x.dim() == 0) return gather(x.reshape({1}), 0, indices.reshape({1})).reshape({});
  return gather(x, dim, indices);
}
}  // namespace

ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  core::SortResult r = core::topk(x, k, dim, largest);
  if (grad_enabled() && x.requires_grad()) r.values = values_by_gather(x, dim, r.indices);
  return {r.values, r.indices};
}

ValuesIndices sort(const Tensor& x, int64_t dim, bool descending) {
  core::SortResult r = core::sort(x, dim, descending);
  if (grad_enabled() && x.requires_grad()) r.values = values_by_gather(x, dim, r.indices);
  return {r.values, r.indices};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) { return core::sort(x, dim, descending).indices; }

}  // namespace tz
