// Differentiable reductions (ops.def section "reductions") and sum_to, plus the
// non-differentiable argmax / max_with_indices / min_with_indices. Each forward calls the
// core reduction (core/reduce.h); its backward, built right here, calls the matching core
// backward helper, which runs the kernel of core/kernels/reduce.cpp.
#include "autograd/ops.h"
#include "core/reduce.h"

namespace tz {

// d sum / dx = 1 on every reduced element: spread g back over the reduced dims.
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  Tensor out = core::sum(x, dims, keepdim);
  Shape in_shape = x.shape();
  make_node(OpId::sum, out, {x}, [in_shape, dims, keepdim](const Tensor& g) {
    return std::vector<Tensor>{core::sum_backward(g, in_shape, dims, keepdim, 1.0)};
  });
  return out;
}

// d mean / dx = 1/N on every reduced element.
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  Tensor out = core::mean(x, dims, keepdim);
  Shape in_shape = x.shape();
  int64_t n = out.numel() == 0 ? 1 : x.numel() / out.numel();
  make_node(OpId::mean, out, {x}, [in_shape, dims, keepdim, n](const Tensor& g) {
    return std::vector<Tensor>{core::sum_backward(g, in_shape, dims, keepdim, 1.0 / double(n))};
  });
  return out;
}

// d var / dx_n = 2 (x_n - mean) / (N - correction).
Tensor var(const Tensor& x, int64_t dim, int64_t correction, bool keepdim) {
  Tensor out = core::var(x, dim, correction, keepdim);
  Tensor xs = x.detach();
  make_node(OpId::var, out, {x}, [xs, dim, correction, keepdim](const Tensor& g) {
    return std::vector<Tensor>{core::var_backward(g, xs, dim, correction, keepdim)};
  });
  return out;
}

// The gradient of max/min goes to the first extremum only (a subgradient at ties, as
// PyTorch's max(dim) does). One forward gives values and indices; the node keeps indices.
namespace {
ValuesIndices extremum(OpId op, const Tensor& x, int64_t dim, bool keepdim) {
  auto r = op == OpId::max ? core::max(x, dim, keepdim) : core::min(x, dim, keepdim);
  Shape in_shape = x.shape();
  Tensor idx = r.indices;
  make_node(op, r.values, {x}, [idx, in_shape, dim, keepdim](const Tensor& g) {
    return std::vector<Tensor>{core::index_backward(g, idx, in_shape, dim, keepdim)};
  });
  return {r.values, r.indices};
}
}  // namespace

Tensor max(const Tensor& x, int64_t dim, bool keepdim) { return extremum(OpId::max, x, dim, keepdim).values; }
Tensor min(const Tensor& x, int64_t dim, bool keepdim) { return extremum(OpId::min, x, dim, keepdim).values; }
ValuesIndices max_with_indices(const Tensor& x, int64_t dim, bool keepdim) {
  return extremum(OpId::max, x, dim, keepdim);
}
ValuesIndices min_with_indices(const Tensor& x, int64_t dim, bool keepdim) {
  return extremum(OpId::min, x, dim, keepdim);
}

// d lse / dx_n = exp(x_n - lse) = softmax(x)_n.
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor out = core::logsumexp(x, dim, keepdim);
  Tensor xs = x.detach(), os = out.detach();
  make_node(OpId::logsumexp, out, {x}, [xs, os, dim, keepdim](const Tensor& g) {
    return std::vector<Tensor>{core::logsumexp_backward(g, os, xs, dim, keepdim)};
  });
  return out;
}

// d y_k / dx_n = [n <= k], so dx_n = sum_{k >= n} g_k: a reverse cumulative sum.
Tensor cumsum(const Tensor& x, int64_t dim) {
  Tensor out = core::cumsum(x, dim);
  make_node(OpId::cumsum, out, {x},
            [dim](const Tensor& g) { return std::vector<Tensor>{core::cumsum_backward(g, dim)}; });
  return out;
}

// Built from sum(keepdim) + reshape, so it is differentiable when grad mode is on.
Tensor sum_to(const Tensor& grad, const Shape& shape) {
  Shape dims = core::sum_to_dims(grad.shape(), shape);
  if (dims.empty()) return grad;
  return sum(grad, dims, true).reshape(shape);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return core::argmax(x, dim, keepdim); }

}  // namespace tz
