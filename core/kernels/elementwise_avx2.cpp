// AVX2+FMA f32 versions of the elementwise kernels (compiled with -mavx2 -mfma; called
// only when tz::simd_enabled()). Each loop handles 8 lanes at a time and the last N % 8
// elements with masked loads/stores, so nothing is read or written past the run.
// The math functions (exp, tanh, gelu, ...) and their measured errors are in vecmath.h.
// Shape letter: N = elements in the run.
#include <cmath>

#include "core/kernels/elementwise.h"
#include "core/kernels/vecmath.h"

namespace tz::kernels {

using simd::F8;

namespace {

// y = f(x) over a run.
template <class F>
void map1(float* y, const float* x, int64_t N, F f) {
  int64_t i = 0;
  for (; i + 8 <= N; i += 8) f(F8::load(x + i)).store(y + i);
  if (i < N) {
    int r = int(N - i);
    f(F8::load_partial(x + i, r)).store_partial(y + i, r);
  }
}
// out = f(a, b) over two runs.
template <class F>
void map2(float* out, const float* a, const float* b, int64_t N, F f) {
  int64_t i = 0;
  for (; i + 8 <= N; i += 8) f(F8::load(a + i), F8::load(b + i)).store(out + i);
  if (i < N) {
    int r = int(N - i);
    f(F8::load_partial(a + i, r), F8::load_partial(b + i, r)).store_partial(out + i, r);
  }
}
// out = f(a, b, c) over three runs (backward: y, x, dy).
template <class F>
void map3(float* out, const float* a, const float* b, const float* c, int64_t N, F f) {
  int64_t i = 0;
  for (; i + 8 <= N; i += 8) f(F8::load(a + i), F8::load(b + i), F8::load(c + i)).store(out + i);
  if (i < N) {
    int r = int(N - i);
    f(F8::load_partial(a + i, r), F8::load_partial(b + i, r), F8::load_partial(c + i, r)).store_partial(out + i, r);
  }
}

// maximum/minimum with NaN propagation and "a at ties": _mm256_max_ps(b, a) returns its
// second operand a at ties and when either is NaN; a NaN in b is then put back.
inline F8 vmax(F8 a, F8 b) { return simd::select(simd::isnan(b), b, _mm256_max_ps(b.v, a.v)); }
inline F8 vmin(F8 a, F8 b) { return simd::select(simd::isnan(b), b, _mm256_min_ps(b.v, a.v)); }

// Calls f with the vector form of a binary op; false if the op has none.
template <class Body>
bool with_binary(BinaryOp op, Body body) {
  switch (op) {
    case BinaryOp::add:
      body([](F8 a, F8 b) { return a + b; });
      return true;
    case BinaryOp::sub:
      body([](F8 a, F8 b) { return a - b; });
      return true;
    case BinaryOp::mul:
      body([](F8 a, F8 b) { return a * b; });
      return true;
    case BinaryOp::div:
      body([](F8 a, F8 b) { return a / b; });
      return true;
    case BinaryOp::maximum:
      body(vmax);
      return true;
    case BinaryOp::minimum:
      body(vmin);
      return true;
    default:
      return false;  // pow (no vector pow here) and comparisons take the reference
  }
}

constexpr float kInvSqrt2Pi = 0.398942280401432678f;
constexpr float kSqrt2OverPi = 0.797884560802865356f;
}  // namespace

bool unary_avx2(UnaryOp op, float* y, const float* x, int64_t N) {
  using namespace simd;
  switch (op) {
    case UnaryOp::neg:
      map1(y, x, N, [](F8 v) { return -v; });
      return true;
    case UnaryOp::exp:
      map1(y, x, N, [](F8 v) { return simd::exp(v); });
      return true;
    case UnaryOp::log:
      map1(y, x, N, [](F8 v) { return simd::log(v); });
      return true;
    case UnaryOp::sqrt:
      map1(y, x, N, [](F8 v) { return simd::sqrt(v); });
      return true;
    case UnaryOp::rsqrt:  // a true division, not the 12-bit _mm256_rsqrt_ps estimate
      map1(y, x, N, [](F8 v) { return F8(1.0f) / simd::sqrt(v); });
      return true;
    case UnaryOp::abs:
      map1(y, x, N, [](F8 v) { return simd::abs(v); });
      return true;
    case UnaryOp::tanh:
      map1(y, x, N, [](F8 v) { return simd::tanh(v); });
      return true;
    case UnaryOp::sigmoid:
      map1(y, x, N, [](F8 v) { return simd::sigmoid(v); });
      return true;
    case UnaryOp::log_sigmoid:
      map1(y, x, N, [](F8 v) { return -simd::softplus(-v); });
      return true;
    case UnaryOp::softplus:
      map1(y, x, N, [](F8 v) { return simd::softplus(v); });
      return true;
    case UnaryOp::relu:
      map1(y, x, N, [](F8 v) { return max_nan(F8(0.0f), v); });
      return true;
    case UnaryOp::gelu:
      map1(y, x, N, [](F8 v) { return simd::gelu(v); });
      return true;
    case UnaryOp::gelu_tanh:
      map1(y, x, N, [](F8 v) { return simd::gelu_tanh(v); });
      return true;
    case UnaryOp::silu:
      map1(y, x, N, [](F8 v) { return v * simd::sigmoid(v); });
      return true;
    case UnaryOp::sin:
    case UnaryOp::cos:
      return false;  // std::sin/cos (no vector range reduction here)
  }
  return false;
}

bool unary_backward_avx2(UnaryOp op, float* dx, const float* y, const float* x, const float* dy, int64_t N) {
  using namespace simd;
  const F8 one(1.0f), zero(0.0f);
  switch (op) {
    case UnaryOp::neg:
      map3(dx, y, x, dy, N, [](F8, F8, F8 g) { return -g; });
      return true;
    case UnaryOp::exp:
      map3(dx, y, x, dy, N, [](F8 o, F8, F8 g) { return g * o; });
      return true;
    case UnaryOp::log:
      map3(dx, y, x, dy, N, [](F8, F8 v, F8 g) { return g / v; });
      return true;
    case UnaryOp::sqrt:
      map3(dx, y, x, dy, N, [](F8 o, F8, F8 g) { return F8(0.5f) * g / o; });
      return true;
    case UnaryOp::rsqrt:
      map3(dx, y, x, dy, N, [](F8 o, F8, F8 g) { return g * (F8(-0.5f) * o * o * o); });
      return true;
    case UnaryOp::abs:  // subgradient 0 at 0
      map3(dx, y, x, dy, N, [=](F8, F8 v, F8 g) { return select(gt(v, zero), g, select(lt(v, zero), -g, zero)); });
      return true;
    case UnaryOp::relu:  // subgradient 0 at 0
      map3(dx, y, x, dy, N, [=](F8, F8 v, F8 g) { return select(gt(v, zero), g, zero); });
      return true;
    case UnaryOp::tanh:
      map3(dx, y, x, dy, N, [=](F8 o, F8, F8 g) { return g * fma(-o, o, one); });
      return true;
    case UnaryOp::sigmoid:
      map3(dx, y, x, dy, N, [=](F8 o, F8, F8 g) { return g * (o * (one - o)); });
      return true;
    case UnaryOp::log_sigmoid:
      map3(dx, y, x, dy, N, [](F8, F8 v, F8 g) { return g * simd::sigmoid(-v); });
      return true;
    case UnaryOp::softplus:
      map3(dx, y, x, dy, N, [](F8, F8 v, F8 g) { return g * simd::sigmoid(v); });
      return true;
    case UnaryOp::gelu:  // Phi(x) + x phi(x)
      map3(dx, y, x, dy, N, [](F8, F8 v, F8 g) {
        F8 pdf = F8(kInvSqrt2Pi) * simd::exp(F8(-0.5f) * v * v);
        return g * fma(v, pdf, normal_cdf(v));
      });
      return true;
    case UnaryOp::gelu_tanh:  // s + 2 x s (1 - s) u', s = sigmoid(2u)
      map3(dx, y, x, dy, N, [=](F8, F8 v, F8 g) {
        F8 u = gelu_tanh_u(v);
        F8 s = simd::sigmoid(u + u);
        F8 du = F8(kSqrt2OverPi) * fma(F8(3 * 0.044715f) * v, v, one);
        F8 t = F8(2.0f) * v * s * (one - s) * du;
        return g * (s + t);
      });
      return true;
    case UnaryOp::silu:  // s (1 + x (1 - s))
      map3(dx, y, x, dy, N, [=](F8, F8 v, F8 g) {
        F8 s = simd::sigmoid(v);
        return g * (s * fma(v, one - s, one));
      });
      return true;
    case UnaryOp::sin:
    case UnaryOp::cos:
      return false;
  }
  return false;
}

bool binary_avx2(BinaryOp op, float* out, const float* a, const float* b, int64_t N) {
  return with_binary(op, [&](auto f) { map2(out, a, b, N, f); });
}
bool binary_scalar_b_avx2(BinaryOp op, float* out, const float* a, float b, int64_t N) {
  const F8 vb(b);
  if (op == BinaryOp::pow && b == 2.0f) {  // x^2: the common case, exact as x * x
    map1(out, a, N, [](F8 v) { return v * v; });
    return true;
  }
  return with_binary(op, [&](auto f) { map1(out, a, N, [&](F8 v) { return f(v, vb); }); });
}
bool binary_scalar_a_avx2(BinaryOp op, float* out, float a, const float* b, int64_t N) {
  const F8 va(a);
  return with_binary(op, [&](auto f) { map1(out, b, N, [&](F8 v) { return f(va, v); }); });
}
void clamp_avx2(float* y, const float* x, float lo, float hi, int64_t N) {
  const F8 vlo(lo), vhi(hi);
  map1(y, x, N, [&](F8 v) { return simd::min_nan(vhi, simd::max_nan(vlo, v)); });
}

}  // namespace tz::kernels
