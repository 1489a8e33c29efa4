// Element types: f32 (the fast path), f64 (for gradcheck and proofs), i64 (indices, tokens).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tz {

enum class DType : uint8_t { f32, f64, i64 };

constexpr size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
constexpr const char* dtype_name(DType t) {
  return t == DType::f32 ? "f32" : t == DType::f64 ? "f64" : "i64";
}
constexpr bool is_floating(DType t) { return t != DType::i64; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }

}  // namespace tz

// TZ_DISPATCH_FLOAT(dtype, op, [&]<class T>() { ... }) calls the lambda with T = float or
// double, and throws naming `op` for other dtypes. TZ_DISPATCH_ALL also accepts int64_t.
#define TZ_DISPATCH_FLOAT(dt, op, fn)                                                   \
  ((dt) == ::tz::DType::f32 ? (fn).template operator()<float>()                         \
   : (dt) == ::tz::DType::f64                                                           \
       ? (fn).template operator()<double>()                                             \
       : throw ::tz::Error(::tz::cat_str(op, ": expected a floating dtype (f32 or f64), got ", \
                                         ::tz::dtype_name(dt))))
#define TZ_DISPATCH_ALL(dt, fn)                                       \
  ((dt) == ::tz::DType::f32   ? (fn).template operator()<float>()   \
   : (dt) == ::tz::DType::f64 ? (fn).template operator()<double>()  \
                              : (fn).template operator()<int64_t>())
