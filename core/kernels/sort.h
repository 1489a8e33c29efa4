// Sorting kernels: stable sort / argsort and top-k of each row.
//
// Shape letters: R = rows, N = row length, k = entries kept by top-k. x is [R, N]
// contiguous; values (may be null) and indices (i64) are [R, N] for sort, [R, k] for top-k.
//
// Order used everywhere:
//   - ties keep the original order: the lower index comes first, in ascending AND in
//     descending order (a stable sort, like PyTorch's sort(stable=True));
//   - NaN counts as larger than every number (and NaNs tie with each other): ascending
//     puts NaNs last, descending puts them first, and top-k largest picks NaNs first.
//   - -0.0 and +0.0 are equal (a tie).
// top-k largest = the first k of the descending sort; smallest = first k of the ascending.
#pragma once

#include <cstdint>

namespace tz::kernels {

template <class Real>
void sort_rows(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, bool descending);
template <class Real>
void sort_rows_ref(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, bool descending);

template <class Real>
void topk_rows(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, int64_t k, bool largest);
template <class Real>
void topk_rows_ref(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, int64_t k, bool largest);

}  // namespace tz::kernels
