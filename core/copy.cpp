#include "core/copy.h"

#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "core/strided.h"

namespace tz::core {

namespace {
template <class D, class S>
void copy_rows(D* dst, const S* src, const StridedLayout<2>& L) {
  parallel_rows<2>(L, 1, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    D* d = dst + off[0];
    const S* s = src + off[1];
    if (st[0] == 1 && st[1] == 1) {
      if constexpr (std::is_same_v<D, S>) {
        std::memcpy(d, s, size_t(n) * sizeof(D));
      } else {
        for (int64_t i = 0; i < n; ++i) d[i] = D(s[i]);
      }
    } else {
      for (int64_t i = 0; i < n; ++i) d[i * st[0]] = D(s[i * st[1]]);
    }
  });
}
}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  Shape target = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  TZ_CHECK(target == dst.shape(), "copy_: source of shape ", src.shape(), " does not broadcast to destination shape ",
           dst.shape());
  if (dst.numel() == 0) return;
  // Broadcast src's strides to dst's shape (stride 0 along broadcast dims).
  Shape sstr(dst.dim(), 0);
  int64_t lead = dst.dim() - src.dim();
  for (int64_t d = 0; d < src.dim(); ++d) sstr[lead + d] = src.shape()[d] == 1 ? 0 : src.strides()[d];
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
    parallel_rows<1>(L, 1, [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
      if (st[0] == 1)
        std::fill(p + off[0], p + off[0] + n, v);
      else
        for (int64_t i = 0; i < n; ++i) p[off[0] + i * st[0]] = v;
    });
  });
}

}  // namespace tz::core
