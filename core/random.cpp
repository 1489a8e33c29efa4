#include "core/random.h"

#include <cmath>

#include "core/parallel.h"

namespace tz {

namespace {
// SplitMix64's finaliser: a bijective mix with good avalanche, applied to seed ^ counter.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

uint64_t Generator::bits(uint64_t i) const { return mix(mix(seed_) ^ mix(i + 0x632be59bd9b4e019ULL)); }

double Generator::uniform_at(uint64_t i) const { return double(bits(i) >> 11) * 0x1.0p-53; }

double Generator::normal_at(uint64_t i) const {
  // Box-Muller from two uniforms; 1 - u keeps the log argument in (0, 1].
  double u1 = 1.0 - uniform_at(2 * i), u2 = uniform_at(2 * i + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

int64_t Generator::randint(int64_t low, int64_t high) {
  TZ_CHECK(high > low, "randint: expected low < high, got [", low, ", ", high, ")");
  uint64_t range = uint64_t(high - low);
  // Multiply-shift maps 64 random bits onto [0, range) with negligible bias.
  return low + int64_t((unsigned __int128)bits(advance(1)) * range >> 64);
}

Generator& default_generator() {
  // One per thread: models trained or sampled in different threads draw (dropout, FCM,
  // initialisation) from their own stream, never racing on a shared counter.
  static thread_local Generator gen(0x5eed);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

namespace {
template <class F>
Tensor fill_random(const Shape& shape, DType dtype, uint64_t first, const char* op, F value) {
  Tensor out = empty(shape, dtype);
  int64_t n = out.numel();
  TZ_DISPATCH_FLOAT(dtype, op, [&]<class T>() {
    T* p = out.data<T>();
    parallel_for(n, 20, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = T(value(first + uint64_t(i)));
    });
  });
  return out;
}
}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype, double low, double high) {
  uint64_t first = gen.advance(uint64_t(shape_numel(shape)));
  return fill_random(shape, dtype, first, "rand", [&](uint64_t i) { return low + (high - low) * gen.uniform_at(i); });
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, double mean, double std) {
  uint64_t first = gen.advance(uint64_t(shape_numel(shape)));
  return fill_random(shape, dtype, first, "randn", [&](uint64_t i) { return mean + std * gen.normal_at(i); });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen) {
  TZ_CHECK(high > low, "randint: expected low < high, got [", low, ", ", high, ")");
  Tensor out = empty(shape, DType::i64);
  int64_t* p = out.data<int64_t>();
  uint64_t range = uint64_t(high - low), first = gen.advance(uint64_t(out.numel()));
  for (int64_t i = 0; i < out.numel(); ++i)
    p[i] = low + int64_t((unsigned __int128)gen.bits(first + uint64_t(i)) * range >> 64);
  return out;
}

Tensor rand(const Shape& shape, DType dtype) { return rand(shape, default_generator(), dtype); }
Tensor randn(const Shape& shape, DType dtype) { return randn(shape, default_generator(), dtype); }

}  // namespace tz
