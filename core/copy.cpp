#include "core/copy.h"

#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "core/strided.h"

namespace tz::core {

namespace {
// n elements of one row.
template <class D, class S>
void copy_run(D* d, const S* s, int64_t n, int64_t sd, int64_t ss) {
  if (sd == 1 && ss == 1) {
    if constexpr (std::is_same_v<D, S>) {
      std::memcpy(d, s, size_t(n) * sizeof(D));
    } else {
      for (int64_t i = 0; i < n; ++i) d[i] = D(s[i]);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) d[i * sd] = D(s[i * ss]);
  }
}

template <class D, class S>
void copy_rows(D* dst, const S* src, const StridedLayout<2>& L) {
  if (num_rows(L) == 1) {  // one run (contiguous tensors): the threads split the run itself
    const int64_t sd = L.strides[0].back(), ss = L.strides[1].back();
    parallel_for(L.shape.back(), 1, [&](int64_t i0, int64_t i1) {
      copy_run(dst + i0 * sd, src + i0 * ss, i1 - i0, sd, ss);
    });
    return;
  }
  parallel_for(num_rows(L), L.shape.back(), [&](int64_t r0, int64_t r1) {
    for_each_row<2>(L, r0, r1, [&](const std::array<int64_t, 2>& off, int64_t n,
                                   const std::array<int64_t, 2>& st) {
      copy_run(dst + off[0], src + off[1], n, st[0], st[1]);
    });
  });
}
}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  Shape target = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  TZ_CHECK(target == dst.shape(), "copy_: source of shape ", src.shape(),
           " does not broadcast to destination shape ", dst.shape());
  if (dst.numel() == 0) return;
  // Broadcast src's strides to dst's shape (stride 0 along broadcast dims).
  Shape sstr(dst.dim(), 0);
  int64_t lead = dst.dim() - src.dim();
  for (int64_t d = 0; d < src.dim(); ++d)
    sstr[lead + d] = src.shape()[d] == 1 ? 0 : src.strides()[d];
  auto L = coalesce<2>(dst.shape(), {dst.strides(), sstr});
  TZ_DISPATCH_ALL(dst.dtype(), [&]<class D>() {
    TZ_DISPATCH_ALL(src.dtype(), [&]<class S>() {
      copy_rows<D, S>(static_cast<D*>(dst.raw_data()), static_cast<const S*>(src.raw_data()), L);
    });
  });
}

Tensor contiguous_as(const Tensor& src, DType dtype) {
  if (src.is_contiguous() && src.dtype() == dtype) return src;
  Tensor out = empty(src.shape(), dtype);
  copy_(out, src);
  return out;
}

Tensor clone(const Tensor& src) {
  Tensor out = empty(src.shape(), src.dtype());
  copy_(out, src);
  return out;
}

void fill_(const Tensor& dst, double value) {
  if (dst.numel() == 0) return;
  auto L = coalesce<1>(dst.shape(), {dst.strides()});
  TZ_DISPATCH_ALL(dst.dtype(), [&]<class T>() {
    T v = T(value), *p = static_cast<T*>(dst.raw_data());
    if (num_rows(L) == 1) {  // one run (contiguous tensors): the threads split the run itself
      const int64_t st = L.strides[0].back();
      parallel_for(L.shape.back(), 1, [&](int64_t i0, int64_t i1) {
        if (st == 1) std::fill(p + i0, p + i1, v);
        else for (int64_t i = i0; i < i1; ++i) p[i * st] = v;
      });
      return;
    }
    parallel_for(num_rows(L), L.shape.back(), [&](int64_t r0, int64_t r1) {
      for_each_row<1>(L, r0, r1, [&](const std::array<int64_t, 1>& off, int64_t n,
                                     const std::array<int64_t, 1>& st) {
        for (int64_t i = 0; i < n; ++i) p[off[0] + i * st[0]] = v;
      });
    });
  });
}

}  // namespace tz::core
