// Tensor-level elementwise ops: broadcasting, strides, dtypes and threads around the
// contiguous-run kernels of core/kernels/elementwise.h.
//
// Recipe for every op: compute the output shape (broadcast), give each operand strides over
// that shape (0 along broadcast dims), merge dims that are contiguous for all operands
// (coalesce), then walk the innermost rows in parallel. A row whose operands all have
// stride 1 goes straight to the SIMD kernel; a stride-0 operand uses the scalar-broadcast
// kernel; any other stride is gathered into a small buffer first, so the kernel always
// sees contiguous runs.
#include "core/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/copy.h"
#include "core/parallel.h"
#include "core/strided.h"

namespace tz::core {

using kernels::BinaryOp;
using kernels::UnaryOp;

Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape st(out.size(), 0);
  int64_t lead = int64_t(out.size()) - t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) st[lead + d] = t.shape()[d] == 1 ? 0 : t.strides()[d];
  return st;
}

namespace {

constexpr int64_t kChunk = 256;  // gather buffer for strided operands (elements)
// p[i0 * st ...] as a contiguous run of m elements: p itself when st == 1, else a gathered copy.
template <class T>
const T* run_ptr(const T* p, int64_t st, int64_t i0, int64_t m, T* buf) {
  if (st == 1) return p + i0;
  for (int64_t j = 0; j < m; ++j) buf[j] = p[(i0 + j) * st];
  return buf;
}

int64_t unary_cost(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg:
    case UnaryOp::abs:
    case UnaryOp::relu:
      return 1;
    default:
      return 8;
  }
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  TZ_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()));
}
void check_defined(const char* op, const Tensor& t) { TZ_CHECK(t.defined(), op, ": got an undefined tensor"); }

bool binary_allows_i64(BinaryOp op) { return op != BinaryOp::div && op != BinaryOp::pow; }

}  // namespace

// ---- unary -------------------------------------------------------------------------------
Tensor unary(UnaryOp op, const Tensor& x) {
  const char* name = kernels::unary_name(op);
  check_defined(name, x);
  Tensor out = empty(x.shape(), x.dtype());
  if (x.numel() == 0) return out;
  auto L = coalesce<2>(x.shape(), {out.strides(), x.strides()});
  if (x.dtype() == DType::i64) {  // index arithmetic: only neg and abs make sense
    TZ_CHECK(op == UnaryOp::neg || op == UnaryOp::abs, name, ": expected a floating dtype (f32 or f64), got i64");
    int64_t* o = out.data<int64_t>();
    const int64_t* p = x.data<int64_t>();
    parallel_rows<2>(L, 1, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
      for (int64_t i = 0; i < n; ++i) {
        int64_t v = p[off[1] + i * st[1]];
        o[off[0] + i] = op == UnaryOp::neg ? -v : (v < 0 ? -v : v);
      }
    });
    return out;
  }
  TZ_DISPATCH_FLOAT(x.dtype(), name, [&]<class T>() {
    T* o = out.data<T>();
    const T* p = x.data<T>();
    parallel_rows<2>(L, unary_cost(op),
                     [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                       if (st[1] == 1) return kernels::unary(op, o + off[0], p + off[1], n);
                       T buf[kChunk];
                       for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
                         int64_t m = std::min(kChunk, n - i0);
                         kernels::unary(op, o + off[0] + i0, run_ptr(p + off[1], st[1], i0, m, buf), m);
                       }
                     });
    return 0;
  });
  return out;
}

Tensor unary_backward(UnaryOp op, const Tensor& y, const Tensor& x, const Tensor& dy) {
  const char* name = kernels::unary_name(op);
  TZ_CHECK(y.shape() == x.shape() && dy.shape() == x.shape(), name, " backward: shapes differ, x ", x.shape(), ", y ",
           y.shape(), ", dy ", dy.shape());
  check_same_dtype(name, x, dy);
  check_same_dtype(name, x, y);
  Tensor dx = empty(x.shape(), x.dtype());
  if (x.numel() == 0) return dx;
  auto L = coalesce<4>(x.shape(), {dx.strides(), y.strides(), x.strides(), dy.strides()});
  TZ_DISPATCH_FLOAT(x.dtype(), name, [&]<class T>() {
    T* o = dx.data<T>();
    const T *py = y.data<T>(), *px = x.data<T>(), *pg = dy.data<T>();
    parallel_rows<4>(
        L, unary_cost(op), [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& st) {
          T by[kChunk], bx[kChunk], bg[kChunk];
          for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
            int64_t m = std::min(kChunk, n - i0);
            kernels::unary_backward(op, o + off[0] + i0, run_ptr(py + off[1], st[1], i0, m, by),
                                    run_ptr(px + off[2], st[2], i0, m, bx), run_ptr(pg + off[3], st[3], i0, m, bg), m);
          }
        });
    return 0;
  });
  return dx;
}

// ---- binary ------------------------------------------------------------------------------
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = kernels::binary_name(op);
  check_defined(name, a);
  check_defined(name, b);
  check_same_dtype(name, a, b);
  TZ_CHECK(is_floating(a.dtype()) || binary_allows_i64(op), name, ": expected a floating dtype (f32 or f64), got ",
           dtype_name(a.dtype()));
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty(shape, a.dtype());
  if (out.numel() == 0) return out;
  auto L = coalesce<3>(shape, {out.strides(), broadcast_strides(a, shape), broadcast_strides(b, shape)});
  int64_t cost = op == BinaryOp::pow ? 16 : 1;
  TZ_DISPATCH_ALL(a.dtype(), [&]<class T>() {
    T* o = out.data<T>();
    const T *pa = a.data<T>(), *pb = b.data<T>();
    parallel_rows<3>(L, cost, [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
      T* po = o + off[0];  // the output is contiguous: its inner stride is 1
      const T *ra = pa + off[1], *rb = pb + off[2];
      if (st[1] == 1 && st[2] == 1) return kernels::binary(op, po, ra, rb, n);
      if (st[1] == 1 && st[2] == 0) return kernels::binary_scalar_b(op, po, ra, *rb, n);
      if (st[1] == 0 && st[2] == 1) return kernels::binary_scalar_a(op, po, *ra, rb, n);
      if (st[1] == 0 && st[2] == 0) {
        T v = kernels::binary_one(op, *ra, *rb);
        return std::fill(po, po + n, v);
      }
      T ba[kChunk], bb[kChunk];
      for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
        int64_t m = std::min(kChunk, n - i0);
        kernels::binary(op, po + i0, run_ptr(ra, st[1], i0, m, ba), run_ptr(rb, st[2], i0, m, bb), m);
      }
    });
    return 0;
  });
  return out;
}

void add_(const Tensor& dst, const Tensor& src) {
  check_defined("add_", dst);
  check_defined("add_", src);
  check_same_dtype("add_", dst, src);
  TZ_CHECK(broadcast_shapes(dst.shape(), src.shape(), "add_") == dst.shape(), "add_: source of shape ", src.shape(),
           " does not broadcast to destination shape ", dst.shape());
  if (dst.numel() == 0) return;
  auto L = coalesce<2>(dst.shape(), {dst.strides(), broadcast_strides(src, dst.shape())});
  TZ_DISPATCH_ALL(dst.dtype(), [&]<class T>() {
    T* d = static_cast<T*>(dst.raw_data());
    const T* s = src.data<T>();
    parallel_rows<2>(L, 1, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
      T* rd = d + off[0];
      const T* rs = s + off[1];
      if (st[0] == 1 && st[1] == 1) return kernels::binary(BinaryOp::add, rd, rd, rs, n);  // in place is safe
      for (int64_t i = 0; i < n; ++i) rd[i * st[0]] += rs[i * st[1]];
    });
    return 0;
  });
}

Tensor binary_scalar(BinaryOp op, const Tensor& x, double s, const char* name) {
  check_defined(name, x);
  TZ_CHECK(is_floating(x.dtype()) || (binary_allows_i64(op) && s == std::trunc(s)), name,
           ": an i64 tensor needs an integral scalar and an integer op, got ", s);
  Tensor out = empty(x.shape(), x.dtype());
  if (x.numel() == 0) return out;
  auto L = coalesce<2>(x.shape(), {out.strides(), x.strides()});
  int64_t cost = op == BinaryOp::pow ? 16 : 1;
  TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() {
    T* o = out.data<T>();
    const T* p = x.data<T>();
    const T sv = T(s);
    parallel_rows<2>(L, cost, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
      if (st[1] == 1) return kernels::binary_scalar_b(op, o + off[0], p + off[1], sv, n);
      T buf[kChunk];
      for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
        int64_t m = std::min(kChunk, n - i0);
        kernels::binary_scalar_b(op, o + off[0] + i0, run_ptr(p + off[1], st[1], i0, m, buf), sv, m);
      }
    });
    return 0;
  });
  return out;
}

// ---- clamp -------------------------------------------------------------------------------
Tensor clamp(const Tensor& x, double lo, double hi) {
  check_defined("clamp", x);
  Tensor out = empty(x.shape(), x.dtype());
  TZ_DISPATCH_FLOAT(x.dtype(), "clamp", [&]<class T>() {
    if (x.numel() == 0) return 0;
    auto L = coalesce<2>(x.shape(), {out.strides(), x.strides()});
    T* o = out.data<T>();
    const T* p = x.data<T>();
    parallel_rows<2>(L, 1, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
      T buf[kChunk];
      for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
        int64_t m = std::min(kChunk, n - i0);
        kernels::clamp(o + off[0] + i0, run_ptr(p + off[1], st[1], i0, m, buf), T(lo), T(hi), m);
      }
    });
    return 0;
  });
  return out;
}

Tensor clamp_backward(const Tensor& x, double lo, double hi, const Tensor& g) {
  TZ_CHECK(g.shape() == x.shape(), "clamp backward: gradient shape ", g.shape(), " vs input ", x.shape());
  check_same_dtype("clamp", x, g);
  Tensor out = empty(x.shape(), x.dtype());
  TZ_DISPATCH_FLOAT(x.dtype(), "clamp", [&]<class T>() {
    if (x.numel() == 0) return 0;
    auto L = coalesce<3>(x.shape(), {out.strides(), x.strides(), g.strides()});
    T* o = out.data<T>();
    const T *px = x.data<T>(), *pg = g.data<T>();
    const T l = T(lo), h = T(hi);
    parallel_rows<3>(L, 1, [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
      for (int64_t i = 0; i < n; ++i) {
        T v = px[off[1] + i * st[1]];
        o[off[0] + i] = (v >= l && v <= h) ? pg[off[2] + i * st[2]] : T(0);
      }
    });
    return 0;
  });
  return out;
}

// ---- where, masked_fill --------------------------------------------------------------------
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond);
  check_defined("where", a);
  check_defined("where", b);
  check_same_dtype("where", a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, a.dtype());
  if (out.numel() == 0) return out;
  auto L = coalesce<4>(
      shape, {out.strides(), broadcast_strides(cond, shape), broadcast_strides(a, shape), broadcast_strides(b, shape)});
  TZ_DISPATCH_ALL(cond.dtype(), [&]<class C>() {
    TZ_DISPATCH_ALL(a.dtype(), [&]<class T>() {
      T* o = out.data<T>();
      const C* pc = cond.data<C>();
      const T *pa = a.data<T>(), *pb = b.data<T>();
      parallel_rows<4>(L, 1, [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& st) {
        for (int64_t i = 0; i < n; ++i)
          o[off[0] + i] = pc[off[1] + i * st[1]] != C(0) ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
      });
      return 0;
    });
    return 0;
  });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", x);
  check_defined("masked_fill", mask);
  Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  TZ_CHECK(shape == x.shape(), "masked_fill: mask of shape ", mask.shape(), " does not broadcast to the input shape ",
           x.shape());
  Tensor out = empty(shape, x.dtype());
  if (out.numel() == 0) return out;
  auto L = coalesce<3>(shape, {out.strides(), x.strides(), broadcast_strides(mask, shape)});
  TZ_DISPATCH_ALL(mask.dtype(), [&]<class C>() {
    TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() {
      T* o = out.data<T>();
      const C* pm = mask.data<C>();
      const T* px = x.data<T>();
      const T v = T(value);
      parallel_rows<3>(L, 1, [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
        for (int64_t i = 0; i < n; ++i) o[off[0] + i] = pm[off[2] + i * st[2]] != C(0) ? v : px[off[1] + i * st[1]];
      });
      return 0;
    });
    return 0;
  });
  return out;
}

// ---- tril, triu --------------------------------------------------------------------------
namespace {
// Keeps x[..., i, j] for j in [lo(i), hi(i)) and zeroes the rest; R rows, C columns per matrix.
Tensor band(const Tensor& x, int64_t k, bool lower, const char* name) {
  check_defined(name, x);
  TZ_CHECK(x.dim() >= 2, name, ": expected at least 2 dims, got shape ", x.shape());
  Tensor src = contiguous(x);
  Tensor out = empty(x.shape(), x.dtype());
  const int64_t C = x.size(-1), R = x.size(-2), rows = x.numel() / std::max<int64_t>(C, 1);
  if (x.numel() == 0) return out;
  TZ_DISPATCH_ALL(x.dtype(), [&]<class T>() {
    T* o = out.data<T>();
    const T* p = src.data<T>();
    parallel_for(rows, C, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        int64_t i = r % R;
        // tril keeps j <= i + k; triu keeps j >= i + k.
        int64_t j0 = lower ? 0 : std::clamp<int64_t>(i + k, 0, C);
        int64_t j1 = lower ? std::clamp<int64_t>(i + k + 1, 0, C) : C;
        const T* s = p + r * C;
        T* d = o + r * C;
        for (int64_t j = 0; j < C; ++j) d[j] = (j >= j0 && j < j1) ? s[j] : T(0);
      }
    });
    return 0;
  });
  return out;
}
}  // namespace

Tensor tril(const Tensor& x, int64_t k) { return band(x, k, true, "tril"); }
Tensor triu(const Tensor& x, int64_t k) { return band(x, k, false, "triu"); }

}  // namespace tz::core
