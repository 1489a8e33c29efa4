// Tensor creation: constant fills, ranges, identity, and tensors from host data.
#pragma once

#include <initializer_list>
#include <vector>

#include "core/tensor.h"

namespace tz {

Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor ones(const Shape& shape, DType dtype = DType::f32);
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor empty_like(const Tensor& t);
Tensor scalar_tensor(double value, DType dtype = DType::f32);  // 0-d
Tensor arange(double start, double end, double step = 1, DType dtype = DType::f32);
Tensor arange(int64_t end, DType dtype = DType::i64);
Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::f32);
Tensor eye(int64_t n, DType dtype = DType::f32);

// From host data; the shape defaults to 1-D, and must match the element count.
Tensor from_vector(const std::vector<float>& data, const Shape& shape = {});
Tensor from_vector(const std::vector<double>& data, const Shape& shape = {});
Tensor from_vector(const std::vector<int64_t>& data, const Shape& shape = {});
// tensor({1, 2, 3}) is f32; tensor({1, 2}, DType::f64) picks the dtype.
Tensor tensor(std::initializer_list<double> values, DType dtype = DType::f32);
Tensor tensor(std::initializer_list<double> values, const Shape& shape, DType dtype = DType::f32);

}  // namespace tz
