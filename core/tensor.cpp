#include "core/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <ostream>
#include <sstream>

#include "core/allocator.h"
#include "core/copy.h"

namespace tz {

namespace {
bool g_fill_uninitialized = false;
}

void set_fill_uninitialized(bool on) { g_fill_uninitialized = on; }
bool fill_uninitialized() { return g_fill_uninitialized; }

Storage::Storage(size_t n) : nbytes(n) {
  // Blocks come from the caching allocator (core/allocator.h): after the first training step
  // they are mostly reused, not fresh from the OS.
  data = detail::alloc_block(n, &capacity);
  // 0xFF bytes are NaN as f32 and f64 (and -1 as i64): a kernel that forgets to write its
  // output is caught by the NaN checks of the tests. Filled on every hand-out, reused or not.
  if (g_fill_uninitialized) std::memset(data, 0xFF, capacity);
}

Storage::~Storage() { detail::free_block(data, capacity); }

TensorImpl& Tensor::impl() const {
  if (!impl_) throw Error("tensor: use of an undefined tensor (default-constructed Tensor())");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to lay out (as PyTorch)
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

bool Tensor::shares_storage(const Tensor& other) const {
  return defined() && other.defined() && impl().storage == other.impl().storage;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data) + impl().offset * dtype_size(dtype());
}

template <class T>
T* Tensor::data() const {
  TZ_CHECK(dtype() == dtype_of<T>(), "data: tensor has dtype ", dtype_name(dtype()), ", asked for ",
           dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;

namespace {
int64_t element_offset(const Tensor& t, std::initializer_list<int64_t> index) {
  TZ_CHECK(int64_t(index.size()) == t.dim(), "at: index has ", index.size(), " entries for a tensor of shape ",
           t.shape());
  int64_t off = 0, d = 0;
  for (int64_t i : index) {
    int64_t n = t.shape()[d];
    TZ_CHECK(i >= -n && i < n, "at: index ", i, " out of range for dim ", d, " of size ", n);
    off += (i < 0 ? i + n : i) * t.strides()[d];
    ++d;
  }
  return off;
}

double load(DType dt, const void* p, int64_t i) {
  switch (dt) {
    case DType::f32:
      return static_cast<const float*>(p)[i];
    case DType::f64:
      return static_cast<const double*>(p)[i];
    default:
      return double(static_cast<const int64_t*>(p)[i]);
  }
}
}  // namespace

double Tensor::item() const {
  TZ_CHECK(numel() == 1, "item: expected a one-element tensor, got shape ", shape());
  int64_t off = 0;  // all dims have size 1
  return load(dtype(), raw_data(), off);
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  return load(dtype(), raw_data(), element_offset(*this, index));
}

void Tensor::set(std::initializer_list<int64_t> index, double value) const {
  int64_t off = element_offset(*this, index);
  switch (dtype()) {
    case DType::f32:
      static_cast<float*>(raw_data())[off] = float(value);
      break;
    case DType::f64:
      static_cast<double*>(raw_data())[off] = value;
      break;
    default:
      static_cast<int64_t*>(raw_data())[off] = int64_t(value);
      break;
  }
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = core::contiguous_as(*this, dtype_of<T>());
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

// Printing: like PyTorch, at most 6 entries per dim (first 3 ... last 3), aligned columns.
namespace {
std::string format_value(DType dt, double v) {
  std::ostringstream os;
  if (dt == DType::i64) {
    os << int64_t(v);
  } else if (std::isnan(v) || std::isinf(v)) {
    os << v;
  } else {
    os << std::setprecision(4) << std::fixed << v;
  }
  return os.str();
}

void print_rec(std::ostream& os, const Tensor& t, const std::vector<double>& vals, const Shape& strides, int64_t d,
               int64_t base, size_t width, int indent) {
  const int64_t n = t.shape()[d], edge = 3;
  os << '[';
  bool last = d == t.dim() - 1;
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * edge && i == edge) {
      os << (last ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - edge;
    }
    int64_t off = base + i * strides[d];
    if (last) {
      std::string s = format_value(t.dtype(), vals[off]);
      os << std::string(width - s.size(), ' ') << s;
    } else {
      print_rec(os, t, vals, strides, d + 1, off, width, indent + 1);
    }
    if (i + 1 < n) os << (last ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << ']';
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(";
  if (dim() == 0) {
    os << format_value(dtype(), item());
  } else if (numel() == 0) {
    os << "[]";
  } else {
    std::vector<double> vals = to_vector<double>();
    size_t width = 1;
    for (double v : vals) width = std::max(width, format_value(dtype(), v).size());
    print_rec(os, *this, vals, contiguous_strides(shape()), 0, 0, width, 7);
  }
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype());
  if (defined() && impl().autograd && requires_grad()) os << ", requires_grad";
  os << ')';
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

Tensor empty(const Shape& shape, DType dtype) {
  TZ_CHECK(int64_t(shape.size()) <= kMaxDims, "empty: at most ", kMaxDims, " dims, got shape ", shape);
  for (int64_t s : shape) TZ_CHECK(s >= 0, "empty: negative size in shape ", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor as_strided(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  TZ_CHECK(shape.size() == strides.size(), "as_strided: shape ", shape, " and strides ", strides, " differ in length");
  TZ_CHECK(int64_t(shape.size()) <= kMaxDims, "as_strided: at most ", kMaxDims, " dims, got ", shape);
  int64_t lo = offset, hi = offset;
  bool empty_view = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    TZ_CHECK(shape[i] >= 0, "as_strided: negative size in shape ", shape);
    if (shape[i] == 0) empty_view = true;
    int64_t span = (shape[i] - 1) * strides[i];
    (span < 0 ? lo : hi) += span;
  }
  int64_t capacity = int64_t(base.storage()->nbytes / dtype_size(base.dtype()));
  TZ_CHECK(empty_view || (lo >= 0 && hi < capacity), "as_strided: view of shape ", shape, " strides ", strides,
           " offset ", offset, " reaches outside storage of ", capacity, " elements");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

}  // namespace tz
