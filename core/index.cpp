// Tensor-level indexing, joining, conv1d and sorting: checks, layouts, then the kernels.
//
// Every indexed op views its tensors as [O, N, I] blocks around the indexed dim (O = dims
// before it, N = its size, I = dims after it) after making them contiguous.
#include "core/index.h"

#include <numeric>

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/conv1d.h"
#include "core/kernels/index.h"
#include "core/kernels/sort.h"

namespace tz::core {

namespace {

void check_i64(const Tensor& index, const char* op, const char* what) {
  TZ_CHECK(index.defined(), op, ": ", what, " is undefined");
  TZ_CHECK(index.dtype() == DType::i64, op, ": ", what, " must have dtype i64, got ", dtype_name(index.dtype()),
           " (shape ", index.shape(), ")");
}

// Throws naming the first index outside [0, bound).
void check_range(const Tensor& index_c, int64_t bound, const char* op, const std::string& where) {
  const int64_t* p = index_c.data<int64_t>();
  int64_t bad = kernels::find_bad_index(p, index_c.numel(), bound);
  TZ_CHECK(bad < 0, op, ": index ", bad < 0 ? 0 : p[bad], " out of range [0, ", bound, ") ", where,
           " (at flat position ", bad, " of the index of shape ", index_c.shape(), ")");
}

struct Blocks {
  int64_t O = 1, N = 1, I = 1;
};
Blocks blocks(const Shape& s, int64_t dim) {
  Blocks b;
  for (int64_t d = 0; d < dim; ++d) b.O *= s[d];
  b.N = s[dim];
  for (int64_t d = dim + 1; d < int64_t(s.size()); ++d) b.I *= s[d];
  return b;
}

// A view of t's first `shape[d]` entries in each dim (shape[d] <= t.size(d)).
Tensor leading_view(const Tensor& t, const Shape& shape) {
  if (shape == t.shape()) return t;
  return as_strided(t, shape, t.strides(), t.offset());
}

// The view of t with dim `dim` moved last (no copy), and the permutation used.
Tensor move_dim_last(const Tensor& t, int64_t dim) {
  Shape shape, strides;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (d != dim) shape.push_back(t.shape()[d]), strides.push_back(t.strides()[d]);
  shape.push_back(t.shape()[dim]);
  strides.push_back(t.strides()[dim]);
  return as_strided(t, shape, strides, t.offset());
}
// Inverse of move_dim_last for a contiguous tensor r: a contiguous tensor with r's last
// dim moved back to `dim`.
Tensor move_last_dim_back(const Tensor& r, int64_t dim) {
  const int64_t nd = r.dim();
  if (dim == nd - 1) return r;
  Shape shape(nd), strides(nd);
  for (int64_t d = 0, j = 0; d < nd; ++d) {
    if (d == dim) {
      shape[d] = r.shape()[nd - 1];
      strides[d] = r.strides()[nd - 1];
    } else {
      shape[d] = r.shape()[j];
      strides[d] = r.strides()[j];
      ++j;
    }
  }
  return contiguous(as_strided(r, shape, strides, r.offset()));
}

}  // namespace

// ---- embedding ---------------------------------------------------------------------------

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  TZ_CHECK(weight.defined() && weight.dim() == 2, "embedding: weight must be 2-D [V, C], got shape ",
           weight.defined() ? weight.shape() : Shape{});
  check_i64(ids, "embedding", "ids");
  const int64_t V = weight.size(0), C = weight.size(1), N = ids.numel();
  Tensor ic = contiguous(ids);
  {
    const int64_t* p = ic.data<int64_t>();
    int64_t bad = kernels::find_bad_index(p, N, V);
    TZ_CHECK(bad < 0, "embedding: id ", bad < 0 ? 0 : p[bad], " out of range for a table of V = ", V, " rows (weight ",
             weight.shape(), "; at flat position ", bad, " of ids of shape ", ids.shape(), ")");
  }
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  Tensor out = empty(out_shape, weight.dtype());
  Tensor wc = contiguous(weight);
  TZ_DISPATCH_ALL(weight.dtype(), [&]<class T>() {
    kernels::embedding_forward<T>(out.data<T>(), wc.data<T>(), ic.data<int64_t>(), N, V, C);
  });
  return out;
}

Tensor embedding_backward(const Tensor& grad_out, const Tensor& ids, int64_t V) {
  check_i64(ids, "embedding_backward", "ids");
  TZ_CHECK(grad_out.dim() == ids.dim() + 1, "embedding_backward: grad of shape ", grad_out.shape(),
           " does not match ids of shape ", ids.shape());
  for (int64_t d = 0; d < ids.dim(); ++d)
    TZ_CHECK(grad_out.shape()[d] == ids.shape()[d], "embedding_backward: grad of shape ", grad_out.shape(),
             " does not match ids of shape ", ids.shape());
  const int64_t C = grad_out.size(-1), N = ids.numel();
  Tensor ic = contiguous(ids);
  check_range(ic, V, "embedding_backward", "for the table rows");
  Tensor gc = contiguous(grad_out);
  Tensor dw = zeros({V, C}, grad_out.dtype());
  TZ_DISPATCH_ALL(grad_out.dtype(), [&]<class T>() {
    kernels::embedding_backward<T>(dw.data<T>(), gc.data<T>(), ic.data<int64_t>(), N, V, C);
  });
  return dw;
}

// ---- index_select -------------------------------------------------------------------------

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  TZ_CHECK(x.defined() && x.dim() >= 1, "index_select: x must have at least 1 dim, got shape ",
           x.defined() ? x.shape() : Shape{});
  check_i64(index, "index_select", "index");
  TZ_CHECK(index.dim() <= 1, "index_select: index must be 1-D, got shape ", index.shape());
  dim = wrap_dim(dim, x.dim(), "index_select");
  Blocks b = blocks(x.shape(), dim);
  const int64_t M = index.numel();
  Tensor ic = contiguous(index);
  check_range(ic, b.N, "index_select", cat_str("for dim ", dim, " of size ", b.N, " (x shape ", x.shape(), ")"));
  Shape out_shape = x.shape();
  out_shape[dim] = M;
  Tensor out = empty(out_shape, x.dtype());
  if (out.numel() == 0) return out;
  Tensor xc = contiguous(x);
  TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() {
    kernels::index_select_forward<T>(out.data<T>(), xc.data<T>(), ic.data<int64_t>(), b.O, b.N, b.I, M);
  });
  return out;
}

Tensor index_select_backward(const Tensor& grad_out, const Shape& x_shape, int64_t dim, const Tensor& index) {
  check_i64(index, "index_select_backward", "index");
  dim = wrap_dim(dim, int64_t(x_shape.size()), "index_select_backward");
  Shape expect = x_shape;
  expect[dim] = index.numel();
  TZ_CHECK(grad_out.shape() == expect, "index_select_backward: grad of shape ", grad_out.shape(), ", expected ",
           expect);
  Blocks b = blocks(x_shape, dim);
  Tensor ic = contiguous(index);
  check_range(ic, b.N, "index_select_backward", cat_str("for dim ", dim, " of size ", b.N));
  Tensor dx = zeros(x_shape, grad_out.dtype());
  if (grad_out.numel() == 0) return dx;
  Tensor gc = contiguous(grad_out);
  TZ_DISPATCH_ALL(grad_out.dtype(), [&]<class T>() {
    kernels::index_select_backward<T>(dx.data<T>(), gc.data<T>(), ic.data<int64_t>(), b.O, b.N, b.I, index.numel());
  });
  return dx;
}

// ---- gather / scatter_add ----------------------------------------------------------------

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  TZ_CHECK(x.defined() && x.dim() >= 1, "gather: x must have at least 1 dim, got shape ",
           x.defined() ? x.shape() : Shape{});
  check_i64(index, "gather", "index");
  TZ_CHECK(index.dim() == x.dim(), "gather: index must have x's rank, got index ", index.shape(), " for x ", x.shape());
  dim = wrap_dim(dim, x.dim(), "gather");
  for (int64_t d = 0; d < x.dim(); ++d)
    TZ_CHECK(d == dim || index.shape()[d] <= x.shape()[d], "gather: index ", index.shape(), " is larger than x ",
             x.shape(), " in dim ", d, " (only dim ", dim, " may differ)");
  Tensor ic = contiguous(index);
  check_range(ic, x.size(dim), "gather",
              cat_str("for dim ", dim, " of size ", x.size(dim), " (x shape ", x.shape(), ")"));
  Tensor out = empty(index.shape(), x.dtype());
  if (out.numel() == 0) return out;
  // Only the leading part of x that index covers (in dims other than `dim`) is read.
  Shape sub = index.shape();
  sub[dim] = x.size(dim);
  Tensor xc = contiguous(leading_view(x, sub));
  Blocks b = blocks(index.shape(), dim);
  TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() {
    kernels::gather_forward<T>(out.data<T>(), xc.data<T>(), ic.data<int64_t>(), b.O, x.size(dim), b.I, b.N);
  });
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  TZ_CHECK(x.defined() && x.dim() >= 1, "scatter_add: x must have at least 1 dim, got shape ",
           x.defined() ? x.shape() : Shape{});
  check_i64(index, "scatter_add", "index");
  TZ_CHECK(src.defined() && src.dtype() == x.dtype(), "scatter_add: src dtype ",
           src.defined() ? dtype_name(src.dtype()) : "undefined", " differs from x dtype ", dtype_name(x.dtype()));
  TZ_CHECK(index.dim() == x.dim() && src.dim() == x.dim(),
           "scatter_add: x, index and src must have the same rank, got x ", x.shape(), ", index ", index.shape(),
           ", src ", src.shape());
  dim = wrap_dim(dim, x.dim(), "scatter_add");
  for (int64_t d = 0; d < x.dim(); ++d) {
    TZ_CHECK(index.shape()[d] <= src.shape()[d], "scatter_add: index ", index.shape(), " is larger than src ",
             src.shape(), " in dim ", d);
    TZ_CHECK(d == dim || index.shape()[d] <= x.shape()[d], "scatter_add: index ", index.shape(), " is larger than x ",
             x.shape(), " in dim ", d, " (only dim ", dim, " may differ)");
  }
  Tensor ic = contiguous(index);
  check_range(ic, x.size(dim), "scatter_add",
              cat_str("for dim ", dim, " of size ", x.size(dim), " (x shape ", x.shape(), ")"));
  Tensor out = clone(x);  // contiguous
  if (index.numel() == 0) return out;
  Tensor sc = contiguous(leading_view(src, index.shape()));
  // The part of out that index reaches; scatter into a contiguous copy of it when it is not
  // all of out, then copy it back.
  Shape sub = index.shape();
  sub[dim] = x.size(dim);
  Tensor region = leading_view(out, sub);
  Tensor target = region.is_contiguous() ? region : clone(region);
  Blocks b = blocks(index.shape(), dim);
  TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() {
    kernels::scatter_add<T>(target.data<T>(), ic.data<int64_t>(), sc.data<T>(), b.O, x.size(dim), b.I, b.N);
  });
  if (!target.shares_storage(out)) copy_(region, target);
  return out;
}

// ---- cat -----------------------------------------------------------------------------------

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  TZ_CHECK(!xs.empty(), "cat: expected at least one tensor");
  for (size_t j = 0; j < xs.size(); ++j) TZ_CHECK(xs[j].defined(), "cat: tensor ", j, " is undefined");
  const Tensor& x0 = xs[0];
  TZ_CHECK(x0.dim() >= 1, "cat: cannot concatenate 0-d tensors (tensor 0 has shape [])");
  dim = wrap_dim(dim, x0.dim(), "cat");
  int64_t total = 0;
  for (size_t j = 0; j < xs.size(); ++j) {
    const Tensor& x = xs[j];
    TZ_CHECK(x.dtype() == x0.dtype(), "cat: tensor ", j, " has dtype ", dtype_name(x.dtype()),
             " but tensor 0 has dtype ", dtype_name(x0.dtype()));
    bool ok = x.dim() == x0.dim();
    for (int64_t d = 0; ok && d < x0.dim(); ++d) ok = d == dim || x.shape()[d] == x0.shape()[d];
    TZ_CHECK(ok, "cat: tensor ", j, " has shape ", x.shape(), " but tensor 0 has shape ", x0.shape(),
             "; sizes must match except in dim ", dim);
    total += x.shape()[dim];
  }
  Shape out_shape = x0.shape();
  out_shape[dim] = total;
  Tensor out = empty(out_shape, x0.dtype());
  int64_t start = 0;
  for (const Tensor& x : xs) {
    const int64_t n = x.shape()[dim];
    if (n > 0 && x.numel() > 0) {
      Shape part = out_shape;
      part[dim] = n;
      copy_(as_strided(out, part, out.strides(), out.offset() + start * out.strides()[dim]), x);
    }
    start += n;
  }
  return out;
}

// ---- conv1d_causal -------------------------------------------------------------------------

namespace {
void check_conv(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  TZ_CHECK(x.defined() && x.dim() == 3, "conv1d_causal: x must be [B, T, C], got shape ",
           x.defined() ? x.shape() : Shape{});
  TZ_CHECK(weight.defined() && weight.dim() == 2 && weight.size(0) == x.size(2),
           "conv1d_causal: weight must be [C, K] with C = ", x.size(2), ", got shape ",
           weight.defined() ? weight.shape() : Shape{}, " for x ", x.shape());
  TZ_CHECK(weight.size(1) >= 1, "conv1d_causal: kernel width K must be >= 1, got weight ", weight.shape());
  TZ_CHECK(weight.dtype() == x.dtype(), "conv1d_causal: weight dtype ", dtype_name(weight.dtype()),
           " differs from x dtype ", dtype_name(x.dtype()));
  if (bias.defined()) {
    TZ_CHECK(bias.shape() == Shape{x.size(2)}, "conv1d_causal: bias must be [C] with C = ", x.size(2), ", got shape ",
             bias.shape());
    TZ_CHECK(bias.dtype() == x.dtype(), "conv1d_causal: bias dtype ", dtype_name(bias.dtype()),
             " differs from x dtype ", dtype_name(x.dtype()));
  }
}
}  // namespace

Tensor conv1d_causal(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_conv(x, weight, bias);
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), K = weight.size(1);
  Tensor out = empty(x.shape(), x.dtype());
  Tensor xc = contiguous(x), wc = contiguous(weight);
  Tensor bc = bias.defined() ? contiguous(bias) : Tensor();
  TZ_DISPATCH_FLOAT(x.dtype(), "conv1d_causal", [&]<class F>() {
    kernels::conv1d_causal_forward<F>(out.data<F>(), xc.data<F>(), wc.data<F>(), bc.defined() ? bc.data<F>() : nullptr,
                                      B, T, C, K);
  });
  return out;
}

Conv1dGrads conv1d_causal_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight, bool need_dx,
                                   bool need_dweight, bool need_dbias) {
  check_conv(x, weight, Tensor());
  TZ_CHECK(grad_out.shape() == x.shape(), "conv1d_causal_backward: grad of shape ", grad_out.shape(), ", expected ",
           x.shape());
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), K = weight.size(1);
  Conv1dGrads g;
  if (need_dx) g.dx = zeros(x.shape(), x.dtype());
  if (need_dweight) g.dweight = zeros(weight.shape(), x.dtype());
  if (need_dbias) g.dbias = zeros({C}, x.dtype());
  Tensor gc = contiguous_as(grad_out, x.dtype()), xc = contiguous(x), wc = contiguous(weight);
  TZ_DISPATCH_FLOAT(x.dtype(), "conv1d_causal_backward", [&]<class F>() {
    kernels::conv1d_causal_backward<F>(need_dx ? g.dx.data<F>() : nullptr, need_dweight ? g.dweight.data<F>() : nullptr,
                                       need_dbias ? g.dbias.data<F>() : nullptr, gc.data<F>(), xc.data<F>(),
                                       wc.data<F>(), B, T, C, K);
  });
  return g;
}

// ---- sort / topk ---------------------------------------------------------------------------

namespace {
SortResult sort_along(const Tensor& x_in, int64_t k, int64_t dim, bool descending, bool is_topk, const char* op) {
  TZ_CHECK(x_in.defined(), op, ": x is undefined");
  // A 0-d tensor sorts like a 1-element vector.
  Tensor x = x_in.dim() == 0 ? as_strided(x_in, {1}, {1}, x_in.offset()) : x_in;
  dim = wrap_dim(dim, x.dim(), op);
  const int64_t N = x.size(dim);
  if (is_topk)
    TZ_CHECK(k >= 0 && k <= N, op, ": k = ", k, " out of range [0, ", N, "] for dim ", dim, " of size ", N,
             " (x shape ", x.shape(), ")");
  else
    k = N;
  Tensor xc = contiguous(move_dim_last(x, dim));
  Shape rshape = xc.shape();
  rshape.back() = k;
  Tensor values = empty(rshape, x.dtype()), indices = empty(rshape, DType::i64);
  const int64_t R = N == 0 ? 0 : xc.numel() / N;
  if (k > 0 && R > 0) {
    TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() {
      if (is_topk)
        kernels::topk_rows<T>(values.data<T>(), indices.data<int64_t>(), xc.data<T>(), R, N, k, descending);
      else
        kernels::sort_rows<T>(values.data<T>(), indices.data<int64_t>(), xc.data<T>(), R, N, descending);
    });
  }
  SortResult r{move_last_dim_back(values, dim), move_last_dim_back(indices, dim)};
  if (x_in.dim() == 0) {
    r.values = as_strided(r.values, {}, {}, r.values.offset());
    r.indices = as_strided(r.indices, {}, {}, r.indices.offset());
  }
  return r;
}
}  // namespace

SortResult topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  return sort_along(x, k, dim, largest, true, "topk");
}

SortResult sort(const Tensor& x, int64_t dim, bool descending) {
  return sort_along(x, 0, dim, descending, false, "sort");
}

}  // namespace tz::core
