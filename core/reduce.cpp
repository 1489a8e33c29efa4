// Tensor-level reductions: see reduce.h. Every op here: check, bring x into the [O, N, I]
// layout (core/kernels/reduce.h), allocate the output, dispatch on dtype, call the kernel.
#include "core/reduce.h"

#include <algorithm>

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/reduce.h"

namespace tz::core {

namespace {

int64_t prod(const Shape& s, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e; ++i) p *= s[i];
  return p;
}

// x viewed as contiguous [O, N, I] (xc), and the shape of the reduced output.
struct Layout {
  Tensor xc;
  int64_t O = 1, N = 1, I = 1;
  Shape out_shape;
  bool permuted = false;  // reduced dims were not adjacent: xc holds x with them moved last
  Shape perm;             // when permuted: xc's dim order in x's numbering
};

// Which dims of an ndim-tensor `dims` names ({} = all). A 0-d tensor counts as 1 dim.
std::vector<bool> reduce_mask(const Shape& dims, int64_t ndim, const char* op) {
  int64_t nd = std::max<int64_t>(ndim, 1);
  std::vector<bool> mask(size_t(nd), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, nd, op);
    TZ_CHECK(!mask[size_t(w)], op, ": dim ", w, " repeated in ", dims);
    mask[size_t(w)] = true;
  }
  return mask;
}

Layout prepare(const Tensor& x, const Shape& dims, bool keepdim, const char* op, bool copy = true) {
  Layout L;
  std::vector<bool> mask = reduce_mask(dims, x.dim(), op);
  if (x.dim() == 0) {
    if (copy) L.xc = contiguous(x);
    return L;  // O = N = I = 1, out_shape = []
  }
  const Shape& s = x.shape();
  size_t nd = s.size();
  for (size_t d = 0; d < nd; ++d) {
    if (!mask[d])
      L.out_shape.push_back(s[d]);
    else if (keepdim)
      L.out_shape.push_back(1);
  }
  size_t first = 0, last = nd - 1;
  while (!mask[first]) ++first;
  while (!mask[last]) --last;
  bool adjacent = true;
  for (size_t d = first; d <= last; ++d) adjacent = adjacent && mask[d];
  if (adjacent) {
    if (copy) L.xc = contiguous(x);
    L.O = prod(s, 0, first);
    L.N = prod(s, first, last + 1);
    L.I = prod(s, last + 1, nd);
    return L;
  }
  // Move the reduced dims last (kept dims keep their order), then copy once.
  L.permuted = true;
  for (size_t d = 0; d < nd; ++d)
    if (!mask[d]) L.perm.push_back(int64_t(d)), L.O *= s[d];
  for (size_t d = 0; d < nd; ++d)
    if (mask[d]) L.perm.push_back(int64_t(d)), L.N *= s[d];
  if (copy) {
    Shape ps, pst;
    for (int64_t d : L.perm) ps.push_back(s[size_t(d)]), pst.push_back(x.strides()[size_t(d)]);
    L.xc = clone(as_strided(x, ps, pst, x.offset()));
  }
  return L;
}

template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// Shape with dim `d` dropped or kept as 1 (single-dim reductions of x's shape).
Layout prepare_dim(const Tensor& x, int64_t dim, bool keepdim, const char* op, bool copy = true) {
  return prepare(x, Shape{dim}, keepdim, op, copy);
}

}  // namespace

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  Layout L = prepare(x, dims, keepdim, "sum");
  Tensor out = empty(L.out_shape, x.dtype());
  if (L.O * L.I == 0) return out;
  TZ_DISPATCH_ALL(x.dtype(),
                  [&]<class T>() { kernels::sum_forward<T>(ptr<T>(out), ptr<T>(L.xc), L.O, L.N, L.I, 1.0); });
  return out;
}

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  Layout L = prepare(x, dims, keepdim, "mean");
  Tensor out = empty(L.out_shape, x.dtype());
  return TZ_DISPATCH_FLOAT(x.dtype(), "mean", [&]<class T>() {
    // N = 0 gives 0 * (1/0) = NaN, like PyTorch's mean of an empty tensor.
    if (L.O * L.I > 0) kernels::sum_forward<T>(ptr<T>(out), ptr<T>(L.xc), L.O, L.N, L.I, 1.0 / double(L.N));
    return out;
  });
}

Tensor var(const Tensor& x, int64_t dim, int64_t correction, bool keepdim) {
  TZ_CHECK(correction >= 0, "var: correction must be >= 0, got ", correction);
  Layout L = prepare_dim(x, dim, keepdim, "var");
  Tensor out = empty(L.out_shape, x.dtype());
  return TZ_DISPATCH_FLOAT(x.dtype(), "var", [&]<class T>() {
    if (L.O * L.I > 0) kernels::var_forward<T>(ptr<T>(out), ptr<T>(L.xc), L.O, L.N, L.I, correction);
    return out;
  });
}

namespace {
ReduceWithIndices extremum(const Tensor& x, int64_t dim, bool keepdim, bool is_max, const char* op) {
  Layout L = prepare_dim(x, dim, keepdim, op);
  TZ_CHECK(L.N > 0, op, ": cannot reduce over dim ", dim, " of size 0 (shape ", x.shape(), ")");
  ReduceWithIndices r{empty(L.out_shape, x.dtype()), empty(L.out_shape, DType::i64)};
  if (L.O * L.I == 0) return r;
  TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() {
    kernels::max_forward<T>(ptr<T>(r.values), ptr<int64_t>(r.indices), ptr<T>(L.xc), L.O, L.N, L.I, is_max);
  });
  return r;
}
}  // namespace

ReduceWithIndices max(const Tensor& x, int64_t dim, bool keepdim) { return extremum(x, dim, keepdim, true, "max"); }
ReduceWithIndices min(const Tensor& x, int64_t dim, bool keepdim) { return extremum(x, dim, keepdim, false, "min"); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return extremum(x, dim, keepdim, true, "argmax").indices; }

Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim) {
  Layout L = prepare_dim(x, dim, keepdim, "logsumexp");
  Tensor out = empty(L.out_shape, x.dtype());
  return TZ_DISPATCH_FLOAT(x.dtype(), "logsumexp", [&]<class T>() {
    if (L.O * L.I > 0) kernels::logsumexp_forward<T>(ptr<T>(out), ptr<T>(L.xc), L.O, L.N, L.I);
    return out;
  });
}

Tensor cumsum(const Tensor& x, int64_t dim) {
  Layout L = prepare_dim(x, dim, true, "cumsum");
  Tensor out = empty(x.shape(), x.dtype());
  if (x.numel() == 0) return out;
  TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() { kernels::cumsum_forward<T>(ptr<T>(out), ptr<T>(L.xc), L.O, L.N, L.I); });
  return out;
}

Shape sum_to_dims(const Shape& from, const Shape& to) {
  TZ_CHECK(to.size() <= from.size() && broadcast_shapes(to, from, "sum_to") == from, "sum_to: shape ", to,
           " does not broadcast to the gradient's shape ", from);
  int64_t lead = int64_t(from.size() - to.size());
  Shape dims;
  for (int64_t d = 0; d < int64_t(from.size()); ++d)
    if (d < lead || (to[size_t(d - lead)] == 1 && from[size_t(d)] != 1)) dims.push_back(d);
  return dims;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  Shape dims = sum_to_dims(x.shape(), shape);
  if (dims.empty()) return x;     // then shape == x.shape()
  Tensor s = sum(x, dims, true);  // fresh and contiguous: re-viewing it as `shape` is free
  return as_strided(s, shape, contiguous_strides(shape), 0);
}

// ---- backward helpers --------------------------------------------------------------------

Tensor sum_backward(const Tensor& g, const Shape& in_shape, const Shape& dims, bool keepdim, double scale) {
  DType dt = g.dtype();
  // Build the layout from the input's shape alone (no data needed).
  Tensor shape_only = as_strided(empty({1}, dt), in_shape, Shape(in_shape.size(), 0), 0);
  Layout L = prepare(shape_only, dims, keepdim, "sum backward", false);
  Tensor gc = contiguous(g);
  TZ_CHECK(gc.numel() == L.O * L.I, "sum backward: gradient of shape ", g.shape(), " for a reduction of ", in_shape);
  if (!L.permuted) {
    Tensor d = zeros(in_shape, dt);
    if (d.numel() == 0) return d;
    TZ_DISPATCH_FLOAT(dt, "sum backward",
                      [&]<class T>() { kernels::sum_backward<T>(ptr<T>(d), ptr<T>(gc), L.O, L.N, L.I, scale); });
    return d;
  }
  // Reduced dims were moved last: spread in that order, then permute back with one copy.
  Shape ps, inv(in_shape.size());
  for (size_t k = 0; k < L.perm.size(); ++k) {
    ps.push_back(in_shape[size_t(L.perm[k])]);
    inv[size_t(L.perm[k])] = int64_t(k);
  }
  Tensor dp = zeros(ps, dt);
  if (dp.numel() == 0) return zeros(in_shape, dt);
  TZ_DISPATCH_FLOAT(dt, "sum backward",
                    [&]<class T>() { kernels::sum_backward<T>(ptr<T>(dp), ptr<T>(gc), L.O, L.N, 1, scale); });
  Shape back_strides(in_shape.size());
  for (size_t d = 0; d < in_shape.size(); ++d) back_strides[d] = dp.strides()[size_t(inv[d])];
  return clone(as_strided(dp, in_shape, back_strides, 0));
}

Tensor var_backward(const Tensor& g, const Tensor& x, int64_t dim, int64_t correction, bool keepdim) {
  Layout L = prepare_dim(x, dim, keepdim, "var backward");
  Tensor gc = contiguous(g), d = zeros(x.shape(), x.dtype());
  if (d.numel() == 0) return d;
  TZ_DISPATCH_FLOAT(x.dtype(), "var backward", [&]<class T>() {
    kernels::var_backward<T>(ptr<T>(d), ptr<T>(gc), ptr<T>(L.xc), L.O, L.N, L.I, correction);
  });
  return d;
}

Tensor index_backward(const Tensor& g, const Tensor& indices, const Shape& in_shape, int64_t dim, bool keepdim) {
  Tensor shape_only = as_strided(empty({1}, g.dtype()), in_shape, Shape(in_shape.size(), 0), 0);
  Layout L = prepare_dim(shape_only, dim, keepdim, "max backward", false);
  Tensor gc = contiguous(g), ic = contiguous(indices), d = zeros(in_shape, g.dtype());
  if (d.numel() == 0) return d;
  TZ_DISPATCH_FLOAT(g.dtype(), "max backward", [&]<class T>() {
    kernels::index_backward<T>(ptr<T>(d), ptr<T>(gc), ptr<int64_t>(ic), L.O, L.N, L.I);
  });
  return d;
}

Tensor logsumexp_backward(const Tensor& g, const Tensor& out, const Tensor& x, int64_t dim, bool keepdim) {
  Layout L = prepare_dim(x, dim, keepdim, "logsumexp backward");
  Tensor gc = contiguous(g), oc = contiguous(out), d = zeros(x.shape(), x.dtype());
  if (d.numel() == 0) return d;
  TZ_DISPATCH_FLOAT(x.dtype(), "logsumexp backward", [&]<class T>() {
    kernels::logsumexp_backward<T>(ptr<T>(d), ptr<T>(gc), ptr<T>(oc), ptr<T>(L.xc), L.O, L.N, L.I);
  });
  return d;
}

Tensor cumsum_backward(const Tensor& g, int64_t dim) {
  Layout L = prepare_dim(g, dim, true, "cumsum backward");
  Tensor d = zeros(g.shape(), g.dtype());
  if (d.numel() == 0) return d;
  TZ_DISPATCH_FLOAT(g.dtype(), "cumsum backward",
                    [&]<class T>() { kernels::cumsum_backward<T>(ptr<T>(d), ptr<T>(L.xc), L.O, L.N, L.I); });
  return d;
}

}  // namespace tz::core
