// Walking N-d strided index spaces: the loop under every op that accepts non-contiguous or
// broadcast (stride 0) inputs. Dims that can be merged are merged first, so a contiguous
// tensor is one long row and an op's inner kernel sees long runs.
#pragma once

#include <array>
#include <cstdint>

#include "core/parallel.h"
#include "core/shape.h"

namespace tz::core {

// Shape and per-operand strides after merging dims that are adjacent in memory for every
// operand. Size-1 dims are dropped. Always at least one dim.
template <int N>
struct StridedLayout {
  Shape shape;
  std::array<Shape, N> strides;
};

template <int N>
StridedLayout<N> coalesce(const Shape& shape, const std::array<Shape, N>& strides) {
  StridedLayout<N> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out.shape.empty();
    for (int k = 0; k < N && merge; ++k) merge = out.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      out.shape.back() *= shape[d];
      for (int k = 0; k < N; ++k) out.strides[k].back() = strides[k][d];
    } else {
      out.shape.push_back(shape[d]);
      for (int k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
    }
  }
  if (out.shape.empty()) {
    out.shape.push_back(1);
    for (int k = 0; k < N; ++k) out.strides[k].push_back(0);
  }
  return out;
}

// Calls row(offsets, n, inner_strides) for every innermost row of the index space, with
// rows [row_begin, row_end) in row-major order (so a parallel loop can split the rows).
// offsets[k] is operand k's element offset of the row start.
template <int N, class Row>
void for_each_row(const StridedLayout<N>& L, int64_t row_begin, int64_t row_end, Row&& row) {
  const int64_t nd = int64_t(L.shape.size());
  const int64_t n = L.shape[nd - 1];
  std::array<int64_t, N> inner;
  for (int k = 0; k < N; ++k) inner[k] = L.strides[k][nd - 1];
  // Decompose row_begin into an index over the outer dims.
  int64_t idx[kMaxDims] = {0};
  int64_t r = row_begin;
  for (int64_t d = nd - 2; d >= 0; --d) {
    idx[d] = r % L.shape[d];
    r /= L.shape[d];
  }
  std::array<int64_t, N> off{};
  for (int k = 0; k < N; ++k)
    for (int64_t d = 0; d < nd - 1; ++d) off[k] += idx[d] * L.strides[k][d];
  for (int64_t rr = row_begin; rr < row_end; ++rr) {
    row(off, n, inner);
    // Advance the outer index like an odometer.
    for (int64_t d = nd - 2; d >= 0; --d) {
      ++idx[d];
      for (int k = 0; k < N; ++k) off[k] += L.strides[k][d];
      if (idx[d] < L.shape[d]) break;
      for (int k = 0; k < N; ++k) off[k] -= idx[d] * L.strides[k][d];
      idx[d] = 0;
    }
  }
}

template <int N>
int64_t num_rows(const StridedLayout<N>& L) {
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < L.shape.size(); ++d) rows *= L.shape[d];
  return rows;
}

// A long row is split into blocks of this many elements by parallel_rows.
constexpr int64_t kRowBlock = 16384;

// Calls row(off, n, st) over all innermost rows of L, in parallel. When there are few rows
// (one long contiguous tensor is a single row) each row is also split into blocks, so both
// threads get work. Each element is written by exactly one call, so results do not depend on
// the thread count.
template <int N, class Row>
void parallel_rows(const StridedLayout<N>& L, int64_t cost_per_elem, Row&& row) {
  const int64_t rows = num_rows(L), n = L.shape.back();
  int64_t blocks = 1;
  if (rows < 8 * int64_t(get_num_threads()) && n >= 2 * kRowBlock) blocks = (n + kRowBlock - 1) / kRowBlock;
  parallel_for(rows * blocks, (n / blocks) * cost_per_elem, [&](int64_t i0, int64_t i1) {
    if (blocks == 1) return for_each_row<N>(L, i0, i1, row);
    for (int64_t i = i0; i < i1; ++i) {
      int64_t r = i / blocks, b = i % blocks;
      int64_t b0 = n * b / blocks, b1 = n * (b + 1) / blocks;
      for_each_row<N>(L, r, r + 1, [&](std::array<int64_t, N> off, int64_t, const std::array<int64_t, N>& st) {
        for (int k = 0; k < N; ++k) off[k] += b0 * st[k];
        row(off, b1 - b0, st);
      });
    }
  });
}

}  // namespace tz::core
