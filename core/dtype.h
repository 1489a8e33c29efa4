// Element types: f32 (the fast path), f64 (for gradcheck and proofs), i64 (indices, tokens).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tz {

enum class DType : uint8_t { f32, f64, i64 };

constexpr size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
constexpr const char* dtype_name(DType t) { return t == DType::f32 ? "f32" : t == DType::f64 ? "f64" : "i64"; }
constexpr bool is_floating(DType t) { return t != DType::i64; }

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}

}  // namespace tz

// TZ_DISPATCH_FLOAT(dtype, "op", [&]<class T>() { ... }) calls the lambda with T = float or
// double, and throws naming "op" for other dtypes. TZ_DISPATCH_ALL(dtype, lambda) also
// accepts int64_t. (Variadic so that commas inside the lambda need no extra parentheses.)
#define TZ_DISPATCH_FLOAT(dt, op, ...) ::tz::detail::dispatch_float((dt), (op), __VA_ARGS__)
#define TZ_DISPATCH_ALL(dt, ...) ::tz::detail::dispatch_all((dt), __VA_ARGS__)

namespace tz::detail {
[[noreturn]] void throw_not_floating(const char* op, DType dt);

template <class F>
decltype(auto) dispatch_float(DType dt, const char* op, F&& fn) {
  if (dt == DType::f32) return fn.template operator()<float>();
  if (dt != DType::f64) throw_not_floating(op, dt);
  return fn.template operator()<double>();
}

template <class F>
decltype(auto) dispatch_all(DType dt, F&& fn) {
  if (dt == DType::f32) return fn.template operator()<float>();
  if (dt == DType::f64) return fn.template operator()<double>();
  return fn.template operator()<int64_t>();
}
}  // namespace tz::detail
