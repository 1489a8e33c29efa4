// Random numbers from an explicit, seeded, counter-based generator.
//
// Number i of a stream is a pure function of (seed, i): a SplitMix64-style mix of the
// counter. Filling a tensor consumes one counter per element (two per normal), so the same
// seed gives the same numbers on every machine and thread count, and the state to save in
// a checkpoint is just (seed, counter).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tz {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }
  void set_state(uint64_t seed, uint64_t counter) {
    seed_ = seed;
    counter_ = counter;
  }

  // Reserves n consecutive counters and returns the first.
  uint64_t advance(uint64_t n) {
    uint64_t c = counter_;
    counter_ += n;
    return c;
  }
  // The 64 random bits of counter i (does not advance).
  uint64_t bits(uint64_t i) const;
  double uniform_at(uint64_t i) const;  // in [0, 1), 53 bits
  double normal_at(uint64_t i) const;   // standard normal from counters 2i, 2i+1

  double uniform() { return uniform_at(advance(1)); }
  double normal() { return normal_at(advance(1)); }
  int64_t randint(int64_t low, int64_t high);  // in [low, high)

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

// The calling thread's generator (each thread has its own, seeded 0x5eed when first used).
Generator& default_generator();
void manual_seed(uint64_t seed);  // reseeds the calling thread's default_generator()

Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::f32, double low = 0, double high = 1);
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32, double mean = 0, double std = 1);
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen);  // i64
Tensor rand(const Shape& shape, DType dtype = DType::f32);                      // default_generator()
Tensor randn(const Shape& shape, DType dtype = DType::f32);

}  // namespace tz
