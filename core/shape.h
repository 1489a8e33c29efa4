// Shapes and strides (in elements). At most kMaxDims dimensions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tz {

using Shape = std::vector<int64_t>;
constexpr int64_t kMaxDims = 8;

// At most 2^59 elements, so that a byte count (<= 8 bytes an element) fits in 63 bits.
constexpr int64_t kMaxNumel = int64_t(1) << 59;

// The number of elements; throws naming the shape when a size is negative or the product
// passes kMaxNumel (sizes are never trusted to multiply without overflow).
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[4, 64, 128]"

// Wraps a possibly negative dim into [0, ndim); throws naming `op` if out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// NumPy broadcasting of two shapes; throws naming `op` and both shapes if incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace tz
