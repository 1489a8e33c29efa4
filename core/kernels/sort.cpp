// Sorting kernels (order rules in sort.h).
//
// The references run std::stable_sort on the indices of a row with a value-only
// comparison. The fast versions turn each value into an unsigned integer key with the same
// order (NaN largest; descending = all bits flipped) and sort (key, index) pairs, which
// breaks ties by index: a strict total order, so the unstable (faster) std::sort and
// std::partial_sort give exactly the stable result. Rows run in parallel.
#include "core/kernels/sort.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/parallel.h"

namespace tz::kernels {

namespace {
template <class Real>
bool is_nan(Real v) {
  if constexpr (std::is_floating_point_v<Real>)
    return std::isnan(v);
  else
    return false;
}

// Whether a comes strictly before b (NaN is the largest value).
template <class Real>
bool before(Real a, Real b, bool descending) {
  if (descending) return is_nan(a) ? !is_nan(b) : b < a;
  return is_nan(b) ? !is_nan(a) : a < b;
}

// An unsigned key whose integer order is our value order: NaN largest, -0.0 == +0.0.
// Floats: flip all bits of negatives (so more negative = smaller), set the sign bit of
// the rest. Integers: flip the sign bit. Descending order flips every bit of the key.
template <class Real>
uint64_t sort_key(Real v, bool descending) {
  uint64_t k;
  if constexpr (std::is_same_v<Real, float>) {
    uint32_t b = v == 0 ? 0u : std::bit_cast<uint32_t>(v);
    k = std::isnan(v) ? ~uint32_t(0) : (b >> 31) ? ~b : b | 0x80000000u;
  } else if constexpr (std::is_same_v<Real, double>) {
    uint64_t b = v == 0 ? 0u : std::bit_cast<uint64_t>(v);
    k = std::isnan(v) ? ~uint64_t(0) : (b >> 63) ? ~b : b | (uint64_t(1) << 63);
  } else {
    k = uint64_t(v) ^ (uint64_t(1) << 63);
  }
  return descending ? ~k : k;
}

// Sorts one row as (key, index) pairs; pair's < compares the key, then the index (ties:
// lower index first), a strict total order, so unstable sorts give the stable result.
template <class Real>
void sort_one_row(std::vector<std::pair<uint64_t, int64_t>>& buf, Real* values, int64_t* indices, const Real* xr,
                  int64_t N, int64_t keep, bool descending) {
  buf.resize(size_t(N));
  for (int64_t n = 0; n < N; ++n) buf[n] = {sort_key(xr[n], descending), n};
  if (keep < N && keep * 8 < N) {
    std::partial_sort(buf.begin(), buf.begin() + keep, buf.end());  // O(N log keep)
  } else {
    std::sort(buf.begin(), buf.end());
  }
  for (int64_t j = 0; j < keep; ++j) {
    if (values) values[j] = xr[buf[j].second];
    indices[j] = buf[j].second;
  }
}

template <class Real>
void sort_rows_impl(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, int64_t keep,
                    bool descending) {
  if (keep == 0) return;
  int64_t log_n = 1;
  while ((int64_t(1) << log_n) < N) ++log_n;
  parallel_for(R, N * log_n * 4, [&](int64_t r0, int64_t r1) {
    std::vector<std::pair<uint64_t, int64_t>> buf;
    for (int64_t r = r0; r < r1; ++r)
      sort_one_row(buf, values ? values + r * keep : nullptr, indices + r * keep, x + r * N, N, keep, descending);
  });
}

template <class Real>
void sort_rows_ref_impl(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, int64_t keep,
                        bool descending) {
  std::vector<int64_t> order(static_cast<size_t>(N));
  for (int64_t r = 0; r < R; ++r) {
    const Real* xr = x + r * N;
    std::iota(order.begin(), order.end(), int64_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return before(xr[a], xr[b], descending); });
    for (int64_t j = 0; j < keep; ++j) {
      if (values) values[r * keep + j] = xr[order[j]];
      indices[r * keep + j] = order[j];
    }
  }
}
}  // namespace

template <class Real>
void sort_rows(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, bool descending) {
  sort_rows_impl(values, indices, x, R, N, N, descending);
}
template <class Real>
void sort_rows_ref(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, bool descending) {
  sort_rows_ref_impl(values, indices, x, R, N, N, descending);
}
template <class Real>
void topk_rows(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, int64_t k, bool largest) {
  sort_rows_impl(values, indices, x, R, N, k, largest);
}
template <class Real>
void topk_rows_ref(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, int64_t k, bool largest) {
  sort_rows_ref_impl(values, indices, x, R, N, k, largest);
}

#define TZ_SORT_INSTANTIATE(T)                                                         \
  template void sort_rows<T>(T*, int64_t*, const T*, int64_t, int64_t, bool);          \
  template void sort_rows_ref<T>(T*, int64_t*, const T*, int64_t, int64_t, bool);      \
  template void topk_rows<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, bool); \
  template void topk_rows_ref<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, bool);
TZ_SORT_INSTANTIATE(float)
TZ_SORT_INSTANTIATE(double)
TZ_SORT_INSTANTIATE(int64_t)
#undef TZ_SORT_INSTANTIATE

}  // namespace tz::kernels
