// tz::Tensor: a handle (shared, like PyTorch's) to a strided view of shared storage.
//
// A tensor is shape + strides + offset (all in elements) + dtype over a Storage block that
// several views may share. Copying a Tensor copies the handle, not the data; clone() copies
// the data. Views (reshape, permute, transpose, narrow, select, squeeze, unsqueeze, expand)
// never copy; contiguous() copies only when needed.
//
// The differentiable methods declared here (views, arithmetic, reductions) are defined in
// autograd/, which records them on the graph when an input requires grad; the core/ layer
// itself only uses the metadata and the non-differentiable functions in core/ops.h.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace tz {

// A block of memory, 64-byte aligned, from the caching allocator (core/allocator.h), which
// may hand out a block freed earlier. Every allocation is filled with NaN (floating dtypes)
// when set_fill_uninitialized(true), so a kernel that forgets to write its output fails its
// test instead of passing on stale values.
struct Storage {
  explicit Storage(size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t nbytes = 0;    // as asked for
  size_t capacity = 0;  // as reserved (the allocator's size class, >= nbytes)
};
void set_fill_uninitialized(bool on);
bool fill_uninitialized();

struct AutogradMeta;  // defined in autograd/: requires_grad, grad, grad_fn

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  DType dtype = DType::f32;
  std::shared_ptr<AutogradMeta> autograd;  // null for tensors outside the graph
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata (core) ------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  bool is_contiguous() const;
  bool shares_storage(const Tensor& other) const;
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Pointer to element [0,...,0]; throws if T does not match dtype().
  template <class T>
  T* data() const;
  void* raw_data() const;

  // Element access, for tests and small programs (slow: one bounds-checked element).
  double item() const;  // a one-element tensor's value
  double at(std::initializer_list<int64_t> index) const;
  void set(std::initializer_list<int64_t> index, double value) const;
  template <class T>
  std::vector<T> to_vector() const;  // row-major copy, converting dtype

  std::string str() const;  // readable and truncated, like PyTorch's repr

  // ---- autograd state (defined in autograd/) --------------------------------------------
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const;
  Tensor grad() const;  // undefined until backward reaches this tensor
  void set_grad(const Tensor& g) const;
  void zero_grad() const;    // drops the gradient
  void retain_grad() const;  // keep .grad() on a non-leaf tensor
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;             // same storage, outside the graph
  const char* grad_fn_name() const;  // the op that made this tensor, or nullptr

  // ---- differentiable views and copies (defined in autograd/) ---------------------------
  Tensor view(const Shape& shape) const;     // requires compatible strides; -1 infers
  Tensor reshape(const Shape& shape) const;  // view when possible, else copy
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a size
  Tensor broadcast_to(const Shape& shape) const { return expand(shape); }
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;

  // ---- differentiable arithmetic and reductions (defined in autograd/) -----------------
  Tensor operator-() const;
  Tensor sum(const Shape& dims = {}, bool keepdim = false) const;  // {} = all dims
  Tensor mean(const Shape& dims = {}, bool keepdim = false) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Makes a tensor over fresh contiguous storage (contents uninitialised; see Storage).
Tensor empty(const Shape& shape, DType dtype = DType::f32);
// A view of `base`'s storage with the given geometry; checks it stays inside the storage.
Tensor as_strided(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace tz
