#include "core/creation.h"

#include <cmath>

#include "core/copy.h"

namespace tz {

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  core::fill_(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype()); }
Tensor scalar_tensor(double value, DType dtype) { return full({}, value, dtype); }

Tensor arange(double start, double end, double step, DType dtype) {
  TZ_CHECK(step != 0, "arange: step must be non-zero");
  double count = std::ceil((end - start) / step);
  int64_t n = count > 0 ? int64_t(count) : 0;
  Tensor t = empty({n}, dtype);
  TZ_DISPATCH_ALL(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = T(start + double(i) * step);
  });
  return t;
}

Tensor arange(int64_t end, DType dtype) { return arange(0.0, double(end), 1.0, dtype); }

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  TZ_CHECK(steps >= 0, "linspace: steps must be >= 0, got ", steps);
  Tensor t = empty({steps}, dtype);
  TZ_DISPATCH_ALL(dtype, [&]<class T>() {
    T* p = t.data<T>();
    double h = steps > 1 ? (end - start) / double(steps - 1) : 0.0;
    for (int64_t i = 0; i < steps; ++i) p[i] = T(i == steps - 1 ? end : start + double(i) * h);
  });
  return t;
}

Tensor eye(int64_t n, DType dtype) {
  Tensor t = zeros({n, n}, dtype);
  for (int64_t i = 0; i < n; ++i) t.set({i, i}, 1.0);
  return t;
}

namespace {
template <class T>
Tensor from_host(const std::vector<T>& data, const Shape& shape) {
  Shape s = shape.empty() ? Shape{int64_t(data.size())} : shape;
  TZ_CHECK(shape_numel(s) == int64_t(data.size()), "from_vector: ", data.size(), " values do not fill shape ", s);
  Tensor t = empty(s, dtype_of<T>());
  std::copy(data.begin(), data.end(), t.data<T>());
  return t;
}
}  // namespace

Tensor from_vector(const std::vector<float>& d, const Shape& s) { return from_host(d, s); }
Tensor from_vector(const std::vector<double>& d, const Shape& s) { return from_host(d, s); }
Tensor from_vector(const std::vector<int64_t>& d, const Shape& s) { return from_host(d, s); }

Tensor tensor(std::initializer_list<double> values, DType dtype) {
  return tensor(values, Shape{int64_t(values.size())}, dtype);
}

Tensor tensor(std::initializer_list<double> values, const Shape& shape, DType dtype) {
  TZ_CHECK(shape_numel(shape) == int64_t(values.size()), "tensor: ", values.size(), " values do not fill shape ",
           shape);
  Tensor t = empty(shape, dtype);
  TZ_DISPATCH_ALL(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (double v : values) *p++ = T(v);
  });
  return t;
}

}  // namespace tz
