// Indexing, joining, causal conv1d and sorting on tensors (not differentiable; the
// differentiable versions are in autograd/ops_index.cpp).
//
// These functions check shapes, dtypes and index ranges (throwing tz::Error that names the
// op, the shapes and the bad value), accept data of any strides, and call the kernels in
// core/kernels/{index,conv1d,sort}.h on contiguous buffers. Indices are always i64, never
// negative (no Python-style wrap-around). Data may be f32, f64 or i64 (conv1d: f32, f64).
// Shape letters: B batch, T time, C channels, K kernel width, V vocabulary (table rows).
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tz::core {

// weight [V, C], ids i64 [...] -> [..., C]; every id must be in [0, V).
Tensor embedding(const Tensor& weight, const Tensor& ids);
// The gradient of the table: dweight [V, C] with dweight[ids[n]] += grad_out[n] (repeated
// ids accumulate, in order, deterministically).
Tensor embedding_backward(const Tensor& grad_out, const Tensor& ids, int64_t V);

// x [..., N, ...] (N at `dim`), index i64 1-D [M] (or 0-d) -> [..., M, ...].
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// dx of shape x_shape: dx[..., index[m], ...] += grad_out[..., m, ...].
Tensor index_select_backward(const Tensor& grad_out, const Shape& x_shape, int64_t dim, const Tensor& index);

// PyTorch's gather: index has x's rank and index.size(d) <= x.size(d) for d != dim;
// out has index's shape and out[..., j, ...] = x[..., index[..., j, ...], ...] along dim.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// x + scatter of src: out = copy of x, then out[..., index[p], ...] += src[p] along dim for
// every position p of index (index.size(d) <= src.size(d) for all d, and <= x.size(d) for
// d != dim; entries of src outside index's shape are ignored). x is not modified.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

// Concatenation along dim; all tensors have the same rank and dtype, and equal sizes in
// every other dim.
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);

// Depthwise causal conv1d: x [B, T, C], weight [C, K], bias [C] or undefined -> [B, T, C],
// y[b,t,c] = bias[c] + sum_k weight[c,k] * x[b, t-K+1+k, c] (zero padding on the left).
Tensor conv1d_causal(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
struct Conv1dGrads {
  Tensor dx, dweight, dbias;  // undefined when not asked for
};
Conv1dGrads conv1d_causal_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight, bool need_dx,
                                   bool need_dweight, bool need_dbias);

// Sorting along dim (see core/kernels/sort.h for the order: stable, ties by lower index
// first in both directions, NaN larger than every number).
struct SortResult {
  Tensor values;   // x's dtype
  Tensor indices;  // i64, positions along dim
};
// The k largest (or smallest) entries along dim, in sorted order; 0 <= k <= x.size(dim).
SortResult topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);
SortResult sort(const Tensor& x, int64_t dim = -1, bool descending = false);

}  // namespace tz::core
