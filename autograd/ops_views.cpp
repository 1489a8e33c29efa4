// Views and copies: each returns a tensor over the same storage (except contiguous, clone
// and cast), and records how to route the gradient back to the input's shape.
#include <numeric>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/elementwise.h"

namespace tz {

namespace {
// A view's plain backward from its scatter: the input's gradient, zeros outside the view.
BackwardFn scatter_backward(const ScatterFn& scatter) {
  return [scatter](const Tensor& g) {
    Tensor gin;
    scatter(gin, g);
    return std::vector<Tensor>{gin};
  };
}

// Strides for viewing (shape, strides) as new_shape without copying, or empty if the
// memory layout does not allow it (the rule PyTorch's view() uses: each run of merged old
// dims must be contiguous in memory).
std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape) {
  // Empty and 0-d tensors have no stride pattern to keep: any shape of the same size views them.
  if (shape_numel(shape) == 0 || shape.empty()) return contiguous_strides(new_shape);
  Shape out(new_shape.size());
  int64_t view_d = int64_t(new_shape.size()) - 1;
  int64_t chunk_base = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape, given;  // given: the sizes other than the one to infer
  int64_t infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      TZ_CHECK(infer < 0, op, ": only one dim can be -1, got ", shape);
      infer = int64_t(i);
    } else {
      TZ_CHECK(out[i] >= 0, op, ": invalid size in shape ", shape);
      given.push_back(out[i]);
    }
  }
  const int64_t known = shape_numel(given);  // checked: a crafted shape cannot wrap to a match
  if (infer >= 0) {
    TZ_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape, " is invalid for ", numel, " elements");
    out[infer] = numel / known;
  }
  TZ_CHECK(shape_numel(out) == numel, op, ": shape ", shape, " is invalid for ", numel, " elements");
  return out;
}

// A view's gradient g added into its region of `into` (zeros of the base's shape when the
// first view arrives; that one writes its region, later ones add in place).
template <class Region>
void add_into_region(Tensor& into, const Shape& shape, DType dt, const Tensor& g, Region region_of) {
  const bool fresh = !into.defined();
  if (fresh) into = zeros(shape, dt);
  Tensor region = region_of(into);
  if (fresh)
    core::copy_(region, g);
  else
    core::add_(region, g);
}

}  // namespace

Tensor Tensor::view(const Shape& shape_in) const {
  Shape new_shape = infer_shape(shape_in, numel(), "view");
  auto st = view_strides(shape(), strides(), new_shape);
  TZ_CHECK(st.has_value(), "view: cannot view a tensor of shape ", shape(), " with strides ", strides(), " as ",
           new_shape, " without copying; use reshape()");
  Tensor out = as_strided(*this, new_shape, *st, offset());
  Shape in_shape = shape();
  make_node(OpId::view, out, {*this}, [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
  return out;
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  Shape new_shape = infer_shape(shape_in, numel(), "reshape");
  if (view_strides(shape(), strides(), new_shape)) return view(new_shape);
  return contiguous().view(new_shape);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  TZ_CHECK(start <= end, "flatten: start dim ", start, " after end dim ", end);
  Shape s(shape().begin(), shape().begin() + start);
  int64_t n = 1;
  for (int64_t d = start; d <= end; ++d) n *= shape()[d];
  s.push_back(n);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::permute(const Shape& dims) const {
  TZ_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims given for a tensor of shape ", shape());
  Shape new_shape(dims.size()), new_strides(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    TZ_CHECK(!seen[d], "permute: dim ", d, " repeated in ", dims);
    seen[d] = true;
    new_shape[i] = shape()[d];
    new_strides[i] = strides()[d];
    inverse[d] = int64_t(i);
  }
  Tensor out = as_strided(*this, new_shape, new_strides, offset());
  make_node(OpId::permute, out, {*this},
            [inverse](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  Shape dims(dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[wrap_dim(d0, dim(), "transpose")], dims[wrap_dim(d1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  TZ_CHECK(dim() > 0, "slice: cannot slice a 0-d tensor");
  d = wrap_dim(d, dim(), "slice");
  TZ_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = shape()[d];
  // Python semantics: negative bounds count from the end; out-of-range bounds are clamped.
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape new_shape = shape(), new_strides = strides();
  new_shape[d] = (end - start + step - 1) / step;
  new_strides[d] *= step;
  Tensor out = as_strided(*this, new_shape, new_strides, offset() + start * strides()[d]);
  Shape in_shape = shape();
  DType dt = dtype();
  ScatterFn scatter = [in_shape, dt, d, start, end, step](Tensor& into, const Tensor& g) {
    add_into_region(into, in_shape, dt, g, [&](const Tensor& t) { return t.slice(d, start, end, step); });
  };
  make_node(OpId::slice, out, {*this}, scatter_backward(scatter));
  set_scatter(out, std::move(scatter));
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  int64_t n = shape()[d];
  if (start < 0) start += n;
  TZ_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: range [", start, ", ", start + length,
           ") out of bounds for dim ", d, " of size ", n, " (shape ", shape(), ")");
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  TZ_CHECK(dim() > 0, "select: cannot select from a 0-d tensor");
  d = wrap_dim(d, dim(), "select");
  int64_t n = shape()[d];
  TZ_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of size ", n, " (shape ",
           shape(), ")");
  if (index < 0) index += n;
  Shape new_shape = shape(), new_strides = strides();
  new_shape.erase(new_shape.begin() + d);
  new_strides.erase(new_strides.begin() + d);
  Tensor out = as_strided(*this, new_shape, new_strides, offset() + index * strides()[d]);
  Shape in_shape = shape();
  DType dt = dtype();
  ScatterFn scatter = [in_shape, dt, d, index](Tensor& into, const Tensor& g) {
    add_into_region(into, in_shape, dt, g, [&](const Tensor& t) { return t.select(d, index); });
  };
  make_node(OpId::select, out, {*this}, scatter_backward(scatter));
  set_scatter(out, std::move(scatter));
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape new_shape = shape(), new_strides = strides();
  int64_t st = d < dim() ? strides()[d] * shape()[d] : 1;
  new_shape.insert(new_shape.begin() + d, 1);
  new_strides.insert(new_strides.begin() + d, st);
  Tensor out = as_strided(*this, new_shape, new_strides, offset());
  make_node(OpId::unsqueeze, out, {*this}, [d](const Tensor& g) { return std::vector<Tensor>{g.squeeze(d)}; });
  return out;
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  TZ_CHECK(shape()[d] == 1, "squeeze: dim ", d, " has size ", shape()[d], ", expected 1 (shape ", shape(), ")");
  Shape new_shape = shape(), new_strides = strides();
  new_shape.erase(new_shape.begin() + d);
  new_strides.erase(new_strides.begin() + d);
  Tensor out = as_strided(*this, new_shape, new_strides, offset());
  make_node(OpId::squeeze, out, {*this}, [d](const Tensor& g) { return std::vector<Tensor>{g.unsqueeze(d)}; });
  return out;
}

Tensor Tensor::expand(const Shape& shape_in) const {
  TZ_CHECK(int64_t(shape_in.size()) >= dim(), "expand: target ", shape_in, " has fewer dims than ", shape());
  int64_t lead = int64_t(shape_in.size()) - dim();
  Shape new_shape(shape_in.size()), new_strides(shape_in.size());
  for (int64_t i = 0; i < int64_t(shape_in.size()); ++i) {
    int64_t src = i - lead;
    int64_t want = shape_in[i];
    if (src < 0) {
      TZ_CHECK(want >= 0, "expand: size -1 not allowed for a new leading dim in ", shape_in);
      new_shape[i] = want;
      new_strides[i] = 0;
    } else {
      int64_t have = shape()[src];
      if (want == -1) want = have;
      TZ_CHECK(have == want || have == 1, "expand: cannot expand shape ", shape(), " to ", shape_in, " (dim ", i, ": ",
               have, " vs ", want, ")");
      new_shape[i] = want;
      new_strides[i] = have == want ? strides()[src] : 0;
    }
  }
  if (new_shape == shape()) return *this;
  Tensor out = as_strided(*this, new_shape, new_strides, offset());
  Shape in_shape = shape();
  make_node(OpId::expand, out, {*this},
            [in_shape](const Tensor& g) { return std::vector<Tensor>{sum_to(g, in_shape)}; });
  return out;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = core::clone(*this);
  make_node(OpId::contiguous, out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = core::clone(*this);
  make_node(OpId::clone, out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  TZ_CHECK(!x.requires_grad() || is_floating(dtype), "cast: cannot cast a tensor that requires grad to ",
           dtype_name(dtype));
  Tensor out = core::contiguous_as(x, dtype);
  DType in_dtype = x.dtype();
  make_node(OpId::cast, out, {x}, [in_dtype](const Tensor& g) { return std::vector<Tensor>{cast(g, in_dtype)}; });
  return out;
}

Tensor Tensor::to(DType dtype) const { return cast(*this, dtype); }

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim) {
  TZ_CHECK(size > 0, "split: size must be positive, got ", size);
  dim = wrap_dim(dim, x.dim(), "split");
  std::vector<Tensor> out;
  for (int64_t s = 0; s < x.size(dim); s += size) out.push_back(x.narrow(dim, s, std::min(size, x.size(dim) - s)));
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  TZ_CHECK(chunks > 0, "chunk: chunks must be positive, got ", chunks);
  dim = wrap_dim(dim, x.dim(), "chunk");
  return split(x, std::max<int64_t>((x.size(dim) + chunks - 1) / chunks, 1), dim);
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  TZ_CHECK(!xs.empty(), "stack: expected at least one tensor");
  dim = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> us;
  us.reserve(xs.size());
  for (const Tensor& x : xs) {
    TZ_CHECK(x.shape() == xs[0].shape(), "stack: shapes differ, ", xs[0].shape(), " vs ", x.shape());
    us.push_back(x.unsqueeze(dim));
  }
  return cat(us, dim);
}

}  // namespace tz
