// Copies between tensors of any strides, converting dtype on the way.
#pragma once

#include "core/tensor.h"

namespace tz::core {

// dst[...] = src[...] (same shape, or src broadcastable to dst); converts dtype.
void copy_(const Tensor& dst, const Tensor& src);
// src itself when already contiguous and of `dtype`, else a contiguous converted copy.
Tensor contiguous_as(const Tensor& src, DType dtype);
inline Tensor contiguous(const Tensor& src) { return contiguous_as(src, src.dtype()); }
// Always a fresh contiguous copy.
Tensor clone(const Tensor& src);
// Fills every element (any strides).
void fill_(const Tensor& dst, double value);

}  // namespace tz::core
