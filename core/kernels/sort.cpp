// Sorting kernels (order rules in sort.h).
//
// The references run std::stable_sort on the indices of a row with a value-only
// comparison. The fast versions copy each row into (value, index) pairs and sort them with
// a comparison that breaks ties by index: a strict total order, so the unstable (faster)
// std::sort and std::partial_sort give exactly the stable result. Rows run in parallel.
#include "core/kernels/sort.h"

#include <algorithm>
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
  if constexpr (std::is_floating_point_v<Real>) return std::isnan(v);
  else return false;
}

// Whether a comes strictly before b (NaN is the largest value).
template <class Real>
bool before(Real a, Real b, bool descending) {
  if (descending) return is_nan(a) ? !is_nan(b) : b < a;
  return is_nan(b) ? !is_nan(a) : a < b;
}

template <class Real>
struct PairBefore {
  bool descending;
  bool operator()(const std::pair<Real, int64_t>& a, const std::pair<Real, int64_t>& b) const {
    if (before(a.first, b.first, descending)) return true;
    if (before(b.first, a.first, descending)) return false;
    return a.second < b.second;  // tie: lower index first
  }
};

// Sorts row r into pairs (first `keep` entries in order) and writes them out.
template <class Real>
void sort_one_row(std::vector<std::pair<Real, int64_t>>& buf, Real* values, int64_t* indices,
                  const Real* xr, int64_t N, int64_t keep, bool descending) {
  buf.resize(size_t(N));
  for (int64_t n = 0; n < N; ++n) buf[n] = {xr[n], n};
  PairBefore<Real> cmp{descending};
  if (keep < N && keep * 8 < N) {
    std::partial_sort(buf.begin(), buf.begin() + keep, buf.end(), cmp);  // O(N log keep)
  } else {
    std::sort(buf.begin(), buf.end(), cmp);
  }
  for (int64_t j = 0; j < keep; ++j) {
    if (values) values[j] = buf[j].first;
    indices[j] = buf[j].second;
  }
}

template <class Real>
void sort_rows_impl(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N,
                    int64_t keep, bool descending) {
  if (keep == 0) return;
  int64_t log_n = 1;
  while ((int64_t(1) << log_n) < N) ++log_n;
  parallel_for(R, N * log_n * 4, [&](int64_t r0, int64_t r1) {
    std::vector<std::pair<Real, int64_t>> buf;
    for (int64_t r = r0; r < r1; ++r)
      sort_one_row(buf, values ? values + r * keep : nullptr, indices + r * keep, x + r * N, N,
                   keep, descending);
  });
}

template <class Real>
void sort_rows_ref_impl(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N,
                        int64_t keep, bool descending) {
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
void sort_rows(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N,
               bool descending) {
  sort_rows_impl(values, indices, x, R, N, N, descending);
}
template <class Real>
void sort_rows_ref(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N,
                   bool descending) {
  sort_rows_ref_impl(values, indices, x, R, N, N, descending);
}
template <class Real>
void topk_rows(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N, int64_t k,
               bool largest) {
  sort_rows_impl(values, indices, x, R, N, k, largest);
}
template <class Real>
void topk_rows_ref(Real* values, int64_t* indices, const Real* x, int64_t R, int64_t N,
                   int64_t k, bool largest) {
  sort_rows_ref_impl(values, indices, x, R, N, k, largest);
}

#define TZ_SORT_INSTANTIATE(T)                                                             \
  template void sort_rows<T>(T*, int64_t*, const T*, int64_t, int64_t, bool);              \
  template void sort_rows_ref<T>(T*, int64_t*, const T*, int64_t, int64_t, bool);          \
  template void topk_rows<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, bool);     \
  template void topk_rows_ref<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, bool);
TZ_SORT_INSTANTIATE(float)
TZ_SORT_INSTANTIATE(double)
TZ_SORT_INSTANTIATE(int64_t)
#undef TZ_SORT_INSTANTIATE

}  // namespace tz::kernels
