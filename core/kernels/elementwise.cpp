// Scalar reference kernels for elementwise ops, and the dispatch to the AVX2 versions.
//
// Shape letter: N = elements in the contiguous run. Numerics traps handled here:
//  - sigmoid, softplus and log_sigmoid are written so that no e^x overflows for large |x|:
//    sigmoid(x) = 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0;
//    softplus(x) = max(x,0) + log1p(e^-|x|); log_sigmoid(x) = min(x,0) - log1p(e^-|x|).
//  - gelu uses erfc(-x/sqrt2)/2 for Phi(x): 1 + erf(x/sqrt2) would cancel for negative x.
//  - gelu_tanh uses x * sigmoid(2u), the same function as x (1 + tanh u) / 2 without the
//    cancellation of 1 + tanh u for negative x.
//  - relu, maximum, minimum and clamp keep NaN (a NaN input gives a NaN output).
#include "core/kernels/elementwise.h"

#include <cmath>
#include <type_traits>

#include "core/parallel.h"

namespace tz::kernels {

const char* unary_name(UnaryOp op) {
  static const char* names[] = {"neg",  "exp",     "log",         "sqrt",     "rsqrt", "abs",  "sin",       "cos",
                                "tanh", "sigmoid", "log_sigmoid", "softplus", "relu",  "gelu", "gelu_tanh", "silu"};
  return names[int(op)];
}
const char* binary_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
  return names[int(op)];
}

namespace {
constexpr double kSqrt1_2 = 0.70710678118654752440;      // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1/sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2/pi)
constexpr double kGeluTanhA = 0.044715;

template <class T>
T sigmoid_s(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}
template <class T>
T gelu_tanh_u(T x) {
  return T(kSqrt2OverPi) * (x + T(kGeluTanhA) * x * x * x);
}

template <class T>
T unary_one(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::rsqrt:
      return T(1) / std::sqrt(x);
    case UnaryOp::abs:
      return std::abs(x);
    case UnaryOp::sin:
      return std::sin(x);
    case UnaryOp::cos:
      return std::cos(x);
    case UnaryOp::tanh:
      return std::tanh(x);
    case UnaryOp::sigmoid:
      return sigmoid_s(x);
    case UnaryOp::log_sigmoid:
      return (x < 0 ? x : T(0)) - std::log1p(std::exp(-std::abs(x)));
    case UnaryOp::softplus:
      return (x > 0 ? x : T(0)) + std::log1p(std::exp(-std::abs(x)));
    case UnaryOp::relu:
      return x < 0 ? T(0) : x;  // NaN stays NaN
    case UnaryOp::gelu:
      return T(0.5) * x * std::erfc(-x * T(kSqrt1_2));
    case UnaryOp::gelu_tanh:
      return x * sigmoid_s(T(2) * gelu_tanh_u(x));
    case UnaryOp::silu:
      return x * sigmoid_s(x);
  }
  return x;
}

// f'(x), given x and y = f(x).
template <class T>
T unary_grad_one(UnaryOp op, T y, T x) {
  switch (op) {
    case UnaryOp::neg:
      return T(-1);
    case UnaryOp::exp:
      return y;
    case UnaryOp::log:
      return T(1) / x;
    case UnaryOp::sqrt:
      return T(0.5) / y;
    case UnaryOp::rsqrt:
      return T(-0.5) * y * y * y;  // d x^{-1/2} = -x^{-3/2}/2
    case UnaryOp::abs:
      return x > 0 ? T(1) : x < 0 ? T(-1) : T(0);  // subgradient 0 at 0
    case UnaryOp::sin:
      return std::cos(x);
    case UnaryOp::cos:
      return -std::sin(x);
    case UnaryOp::tanh:
      return T(1) - y * y;
    case UnaryOp::sigmoid:
      return y * (T(1) - y);
    case UnaryOp::log_sigmoid:
      return sigmoid_s(-x);  // 1 - sigmoid(x)
    case UnaryOp::softplus:
      return sigmoid_s(x);
    case UnaryOp::relu:
      return x > 0 ? T(1) : T(0);  // subgradient 0 at 0
    case UnaryOp::gelu: {          // Phi(x) + x phi(x)
      T cdf = T(0.5) * std::erfc(-x * T(kSqrt1_2));
      T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
      return cdf + x * pdf;
    }
    case UnaryOp::gelu_tanh: {  // y = x s, s = sigmoid(2u): y' = s + 2 x s (1 - s) u'
      T s = sigmoid_s(T(2) * gelu_tanh_u(x));
      T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhA) * x * x);
      return s + T(2) * x * s * (T(1) - s) * du;
    }
    case UnaryOp::silu: {  // (x s)' = s + x s (1 - s)
      T s = sigmoid_s(x);
      return s * (T(1) + x * (T(1) - s));
    }
  }
  return T(0);
}
}  // namespace

template <class T>
T binary_one(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      if constexpr (std::is_integral_v<T>)
        return b == 0 ? T(0) : a / b;  // the tensor layer rejects i64 div
      else
        return a / b;
    case BinaryOp::pow:
      return T(std::pow(a, b));
    case BinaryOp::maximum:
      return (a >= b || a != a) ? a : b;  // a at ties; NaN wins
    case BinaryOp::minimum:
      return (a <= b || a != a) ? a : b;
    case BinaryOp::eq:
      return T(a == b);
    case BinaryOp::ne:
      return T(a != b);
    case BinaryOp::lt:
      return T(a < b);
    case BinaryOp::le:
      return T(a <= b);
    case BinaryOp::gt:
      return T(a > b);
    case BinaryOp::ge:
      return T(a >= b);
  }
  return a;
}

// ---- references ----------------------------------------------------------------------------
template <class T>
void unary_ref(UnaryOp op, T* y, const T* x, int64_t N) {
  for (int64_t i = 0; i < N; ++i) y[i] = unary_one(op, x[i]);
}
template <class T>
void unary_backward_ref(UnaryOp op, T* dx, const T* y, const T* x, const T* dy, int64_t N) {
  for (int64_t i = 0; i < N; ++i) dx[i] = dy[i] * unary_grad_one(op, y[i], x[i]);
}
template <class T>
void binary_ref(BinaryOp op, T* out, const T* a, const T* b, int64_t N) {
  for (int64_t i = 0; i < N; ++i) out[i] = binary_one(op, a[i], b[i]);
}
template <class T>
void binary_scalar_b_ref(BinaryOp op, T* out, const T* a, T b, int64_t N) {
  for (int64_t i = 0; i < N; ++i) out[i] = binary_one(op, a[i], b);
}
template <class T>
void binary_scalar_a_ref(BinaryOp op, T* out, T a, const T* b, int64_t N) {
  for (int64_t i = 0; i < N; ++i) out[i] = binary_one(op, a, b[i]);
}
template <class T>
void clamp_ref(T* y, const T* x, T lo, T hi, int64_t N) {
  // min(max(x, lo), hi), written so a NaN x stays NaN (both comparisons are false for it);
  // with lo > hi every element becomes hi, as in PyTorch.
  for (int64_t i = 0; i < N; ++i) {
    T t = x[i] < lo ? lo : x[i];
    y[i] = t > hi ? hi : t;
  }
}

// ---- dispatch: f32 takes the widest SIMD kernel enabled ------------------------------------
namespace {
bool avx512_on() { return simd_level() == SimdLevel::avx512; }
}  // namespace

void unary(UnaryOp op, float* y, const float* x, int64_t N) {
  if (avx512_on() ? avx512::unary(op, y, x, N) : simd_enabled() && avx2::unary(op, y, x, N)) return;
  unary_ref(op, y, x, N);
}
void unary(UnaryOp op, double* y, const double* x, int64_t N) { unary_ref(op, y, x, N); }
void unary_backward(UnaryOp op, float* dx, const float* y, const float* x, const float* dy, int64_t N) {
  if (avx512_on() ? avx512::unary_backward(op, dx, y, x, dy, N)
                  : simd_enabled() && avx2::unary_backward(op, dx, y, x, dy, N))
    return;
  unary_backward_ref(op, dx, y, x, dy, N);
}
void unary_backward(UnaryOp op, double* dx, const double* y, const double* x, const double* dy, int64_t N) {
  unary_backward_ref(op, dx, y, x, dy, N);
}

template <class T>
void binary(BinaryOp op, T* out, const T* a, const T* b, int64_t N) {
  if constexpr (std::is_same_v<T, float>)
    if (avx512_on() ? avx512::binary(op, out, a, b, N) : simd_enabled() && avx2::binary(op, out, a, b, N)) return;
  binary_ref(op, out, a, b, N);
}
template <class T>
void binary_scalar_b(BinaryOp op, T* out, const T* a, T b, int64_t N) {
  if constexpr (std::is_same_v<T, float>)
    if (avx512_on() ? avx512::binary_scalar_b(op, out, a, b, N)
                    : simd_enabled() && avx2::binary_scalar_b(op, out, a, b, N))
      return;
  binary_scalar_b_ref(op, out, a, b, N);
}
template <class T>
void binary_scalar_a(BinaryOp op, T* out, T a, const T* b, int64_t N) {
  if constexpr (std::is_same_v<T, float>)
    if (avx512_on() ? avx512::binary_scalar_a(op, out, a, b, N)
                    : simd_enabled() && avx2::binary_scalar_a(op, out, a, b, N))
      return;
  binary_scalar_a_ref(op, out, a, b, N);
}
template <class T>
void clamp(T* y, const T* x, T lo, T hi, int64_t N) {
  if constexpr (std::is_same_v<T, float>) {
    if (avx512_on()) return avx512::clamp(y, x, lo, hi, N);
    if (simd_enabled()) return avx2::clamp(y, x, lo, hi, N);
  }
  clamp_ref(y, x, lo, hi, N);
}

#define TZ_INSTANTIATE_FLOAT(T)                                                            \
  template void unary_ref<T>(UnaryOp, T*, const T*, int64_t);                              \
  template void unary_backward_ref<T>(UnaryOp, T*, const T*, const T*, const T*, int64_t); \
  template void clamp_ref<T>(T*, const T*, T, T, int64_t);                                 \
  template void clamp<T>(T*, const T*, T, T, int64_t);
#define TZ_INSTANTIATE_ALL(T)                                               \
  template T binary_one<T>(BinaryOp, T, T);                                 \
  template void binary_ref<T>(BinaryOp, T*, const T*, const T*, int64_t);   \
  template void binary_scalar_b_ref<T>(BinaryOp, T*, const T*, T, int64_t); \
  template void binary_scalar_a_ref<T>(BinaryOp, T*, T, const T*, int64_t); \
  template void binary<T>(BinaryOp, T*, const T*, const T*, int64_t);       \
  template void binary_scalar_b<T>(BinaryOp, T*, const T*, T, int64_t);     \
  template void binary_scalar_a<T>(BinaryOp, T*, T, const T*, int64_t);
TZ_INSTANTIATE_FLOAT(float)
TZ_INSTANTIATE_FLOAT(double)
TZ_INSTANTIATE_ALL(float)
TZ_INSTANTIATE_ALL(double)
TZ_INSTANTIATE_ALL(int64_t)
#undef TZ_INSTANTIATE_FLOAT
#undef TZ_INSTANTIATE_ALL

}  // namespace tz::kernels
