// The bodies of the f32 elementwise kernels (elementwise.h), written once over a vector type
// V (simd::F8 or simd::F16 with the math of vecmath.h) and included by elementwise_avx2.cpp
// and elementwise_avx512.cpp, each inside its own namespace (avx2, avx512) and compiled for
// its ISA. Each loop handles V::kLanes lanes at a time and the last N % kLanes elements with
// masked loads/stores, so nothing is read or written past the run. Both widths give the
// same value in every element (vecmath.h's steps are all correctly rounded).
// Shape letter: N = elements in the run.

namespace {

// y = f(x) over a run.
template <class F>
void map1(float* y, const float* x, int64_t N, F f) {
  int64_t i = 0;
  for (; i + V::kLanes <= N; i += V::kLanes) f(V::load(x + i)).store(y + i);
  if (i < N) {
    int r = int(N - i);
    f(V::load_partial(x + i, r)).store_partial(y + i, r);
  }
}
// out = f(a, b) over two runs.
template <class F>
void map2(float* out, const float* a, const float* b, int64_t N, F f) {
  int64_t i = 0;
  for (; i + V::kLanes <= N; i += V::kLanes) f(V::load(a + i), V::load(b + i)).store(out + i);
  if (i < N) {
    int r = int(N - i);
    f(V::load_partial(a + i, r), V::load_partial(b + i, r)).store_partial(out + i, r);
  }
}
// out = f(a, b, c) over three runs (backward: y, x, dy).
template <class F>
void map3(float* out, const float* a, const float* b, const float* c, int64_t N, F f) {
  int64_t i = 0;
  for (; i + V::kLanes <= N; i += V::kLanes) f(V::load(a + i), V::load(b + i), V::load(c + i)).store(out + i);
  if (i < N) {
    int r = int(N - i);
    f(V::load_partial(a + i, r), V::load_partial(b + i, r), V::load_partial(c + i, r)).store_partial(out + i, r);
  }
}

// maximum/minimum with NaN propagation and "a at ties": max_nan(b, a) returns its second
// operand a at ties and when either is NaN; a NaN in b is then put back.
inline V vmax(V a, V b) { return simd::select(simd::isnan(b), b, simd::max_nan(b, a)); }
inline V vmin(V a, V b) { return simd::select(simd::isnan(b), b, simd::min_nan(b, a)); }

// Calls f with the vector form of a binary op; false if the op has none.
template <class Body>
bool with_binary(BinaryOp op, Body body) {
  switch (op) {
    case BinaryOp::add:
      body([](V a, V b) { return a + b; });
      return true;
    case BinaryOp::sub:
      body([](V a, V b) { return a - b; });
      return true;
    case BinaryOp::mul:
      body([](V a, V b) { return a * b; });
      return true;
    case BinaryOp::div:
      body([](V a, V b) { return a / b; });
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

bool unary(UnaryOp op, float* y, const float* x, int64_t N) {
  using namespace simd;
  switch (op) {
    case UnaryOp::neg:
      map1(y, x, N, [](V v) { return -v; });
      return true;
    case UnaryOp::exp:
      map1(y, x, N, [](V v) { return simd::exp(v); });
      return true;
    case UnaryOp::log:
      map1(y, x, N, [](V v) { return simd::log(v); });
      return true;
    case UnaryOp::sqrt:
      map1(y, x, N, [](V v) { return simd::sqrt(v); });
      return true;
    case UnaryOp::rsqrt:  // a true division, not the 12-bit rsqrt estimate
      map1(y, x, N, [](V v) { return V(1.0f) / simd::sqrt(v); });
      return true;
    case UnaryOp::abs:
      map1(y, x, N, [](V v) { return simd::abs(v); });
      return true;
    case UnaryOp::tanh:
      map1(y, x, N, [](V v) { return simd::tanh(v); });
      return true;
    case UnaryOp::sigmoid:
      map1(y, x, N, [](V v) { return simd::sigmoid(v); });
      return true;
    case UnaryOp::log_sigmoid:
      map1(y, x, N, [](V v) { return -simd::softplus(-v); });
      return true;
    case UnaryOp::softplus:
      map1(y, x, N, [](V v) { return simd::softplus(v); });
      return true;
    case UnaryOp::relu:
      map1(y, x, N, [](V v) { return max_nan(V(0.0f), v); });
      return true;
    case UnaryOp::gelu:
      map1(y, x, N, [](V v) { return simd::gelu(v); });
      return true;
    case UnaryOp::gelu_tanh:
      map1(y, x, N, [](V v) { return simd::gelu_tanh(v); });
      return true;
    case UnaryOp::silu:
      map1(y, x, N, [](V v) { return v * simd::sigmoid(v); });
      return true;
    case UnaryOp::sin:
    case UnaryOp::cos:
      return false;  // std::sin/cos (no vector range reduction here)
  }
  return false;
}

bool unary_backward(UnaryOp op, float* dx, const float* y, const float* x, const float* dy, int64_t N) {
  using namespace simd;
  const V one(1.0f), zero(0.0f);
  switch (op) {
    case UnaryOp::neg:
      map3(dx, y, x, dy, N, [](V, V, V g) { return -g; });
      return true;
    case UnaryOp::exp:
      map3(dx, y, x, dy, N, [](V o, V, V g) { return g * o; });
      return true;
    case UnaryOp::log:
      map3(dx, y, x, dy, N, [](V, V v, V g) { return g / v; });
      return true;
    case UnaryOp::sqrt:
      map3(dx, y, x, dy, N, [](V o, V, V g) { return V(0.5f) * g / o; });
      return true;
    case UnaryOp::rsqrt:
      map3(dx, y, x, dy, N, [](V o, V, V g) { return g * (V(-0.5f) * o * o * o); });
      return true;
    case UnaryOp::abs:  // subgradient 0 at 0
      map3(dx, y, x, dy, N, [=](V, V v, V g) { return select(gt(v, zero), g, select(lt(v, zero), -g, zero)); });
      return true;
    case UnaryOp::relu:  // subgradient 0 at 0
      map3(dx, y, x, dy, N, [=](V, V v, V g) { return select(gt(v, zero), g, zero); });
      return true;
    case UnaryOp::tanh:
      map3(dx, y, x, dy, N, [=](V o, V, V g) { return g * fma(-o, o, one); });
      return true;
    case UnaryOp::sigmoid:
      map3(dx, y, x, dy, N, [=](V o, V, V g) { return g * (o * (one - o)); });
      return true;
    case UnaryOp::log_sigmoid:
      map3(dx, y, x, dy, N, [](V, V v, V g) { return g * simd::sigmoid(-v); });
      return true;
    case UnaryOp::softplus:
      map3(dx, y, x, dy, N, [](V, V v, V g) { return g * simd::sigmoid(v); });
      return true;
    case UnaryOp::gelu:  // Phi(x) + x phi(x)
      map3(dx, y, x, dy, N, [](V, V v, V g) {
        V pdf = V(kInvSqrt2Pi) * simd::exp(V(-0.5f) * v * v);
        return g * fma(v, pdf, normal_cdf(v));
      });
      return true;
    case UnaryOp::gelu_tanh:  // s + 2 x s (1 - s) u', s = sigmoid(2u)
      map3(dx, y, x, dy, N, [=](V, V v, V g) {
        V u = gelu_tanh_u(v);
        V s = simd::sigmoid(u + u);
        V du = V(kSqrt2OverPi) * fma(V(3 * 0.044715f) * v, v, one);
        V t = V(2.0f) * v * s * (one - s) * du;
        return g * (s + t);
      });
      return true;
    case UnaryOp::silu:  // s (1 + x (1 - s))
      map3(dx, y, x, dy, N, [=](V, V v, V g) {
        V s = simd::sigmoid(v);
        return g * (s * fma(v, one - s, one));
      });
      return true;
    case UnaryOp::sin:
    case UnaryOp::cos:
      return false;
  }
  return false;
}

bool binary(BinaryOp op, float* out, const float* a, const float* b, int64_t N) {
  return with_binary(op, [&](auto f) { map2(out, a, b, N, f); });
}
bool binary_scalar_b(BinaryOp op, float* out, const float* a, float b, int64_t N) {
  const V vb(b);
  if (op == BinaryOp::pow && b == 2.0f) {  // x^2: the common case, exact as x * x
    map1(out, a, N, [](V v) { return v * v; });
    return true;
  }
  return with_binary(op, [&](auto f) { map1(out, a, N, [&](V v) { return f(v, vb); }); });
}
bool binary_scalar_a(BinaryOp op, float* out, float a, const float* b, int64_t N) {
  const V va(a);
  return with_binary(op, [&](auto f) { map1(out, b, N, [&](V v) { return f(va, v); }); });
}
void clamp(float* y, const float* x, float lo, float hi, int64_t N) {
  const V vlo(lo), vhi(hi);
  map1(y, x, N, [&](V v) { return simd::min_nan(vhi, simd::max_nan(vlo, v)); });
}

