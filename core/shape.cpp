#include "core/shape.h"

#include <bit>

#include "core/dtype.h"
#include "core/error.h"

namespace tz {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) {
    TZ_CHECK(s >= 0, "shape ", shape, ": a size is negative");
    TZ_CHECK(!__builtin_mul_overflow(n, s, &n) && n <= kMaxNumel, "shape ", shape, ": more than 2^",
             std::countr_zero(uint64_t(kMaxNumel)), " elements, larger than any tensor can be");
  }
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

std::string shape_str(const Shape& shape) { return cat_str(shape); }

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = std::max<int64_t>(ndim, 1);  // a 0-d tensor accepts dim 0 and -1
  TZ_CHECK(dim >= -n && dim < n, op, ": dim ", dim, " out of range for a tensor with ", ndim, " dims (expected -", n,
           " <= dim < ", n, ")");
  return dim < 0 ? dim + n : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TZ_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b, " cannot be broadcast (dim ", i, ": ", da,
             " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace detail {
void throw_not_floating(const char* op, DType dt) {
  throw Error(cat_str(op, ": expected a floating dtype (f32 or f64), got ", dtype_name(dt)));
}
}  // namespace detail

}  // namespace tz
