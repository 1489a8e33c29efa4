// The caching allocator behind Storage (core/allocator.h): blocks are reused by size class,
// the statistics add up, the NaN fill of test builds applies to reused blocks too, and
// empty_cache / the cache limit give memory back.
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "autograd/ops.h"
#include "core/allocator.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/tensor.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {
// Caching on for one test, then back to what it was (sanitizer builds default to off).
struct CachingOn {
  bool prev = allocator_caching();
  CachingOn() { set_allocator_caching(true); }
  ~CachingOn() { set_allocator_caching(prev); }
};
}  // namespace

TEST_CASE("allocator: size classes") {
  using detail::alloc_class_size;
  CHECK(alloc_class_size(0) == 64);
  CHECK(alloc_class_size(1) == 64);
  CHECK(alloc_class_size(65) == 128);
  CHECK(alloc_class_size(4096) == 4096);
  CHECK(alloc_class_size(4097) == 5120);  // 4 classes per octave: steps of 1 KB here
  CHECK(alloc_class_size(1 << 20) == (1 << 20));
  CHECK(alloc_class_size((1 << 20) + 1) == (1 << 20) + (1 << 18));
  for (size_t n : {size_t(5000), size_t(123457), size_t(9999999)}) {
    CHECK(alloc_class_size(n) >= n);
    CHECK(alloc_class_size(n) <= n + n / 4 + 64);  // at most 25% waste
    CHECK(alloc_class_size(n) % 64 == 0);
  }
}

TEST_CASE("allocator: a freed block is reused, and the statistics add up") {
  CachingOn caching;
  empty_cache();
  const size_t n = 1000 * 1000;  // f32: 4 MB
  const size_t cap = detail::alloc_class_size(4 * n);
  AllocatorStats s0 = allocator_stats();
  void* first = nullptr;
  {
    Tensor a = empty({int64_t(n)});
    first = a.raw_data();
    AllocatorStats s1 = allocator_stats();
    CHECK(s1.requests == s0.requests + 1);
    CHECK(s1.request_bytes == s0.request_bytes + 4 * n);
    CHECK(s1.os_allocs == s0.os_allocs + 1);
    CHECK(s1.live_bytes == s0.live_bytes + cap);
    CHECK(s1.peak_bytes >= s1.live_bytes);
  }
  AllocatorStats s2 = allocator_stats();
  CHECK(s2.live_bytes == s0.live_bytes);
  CHECK(s2.cached_bytes == s0.cached_bytes + cap);
  CHECK(s2.os_frees == s0.os_frees);  // kept, not returned
  {
    // A request of another size in the same class gets the same block back, from the cache.
    Tensor b = empty({int64_t(n - 10)});
    CHECK(b.raw_data() == first);
    AllocatorStats s3 = allocator_stats();
    CHECK(s3.cache_hits == s2.cache_hits + 1);
    CHECK(s3.os_allocs == s2.os_allocs);
    CHECK(s3.cached_bytes == s2.cached_bytes - cap);
  }
  // empty_cache releases what is cached.
  empty_cache();
  AllocatorStats s4 = allocator_stats();
  CHECK(s4.cached_bytes == 0);
  CHECK(s4.os_frees >= s2.os_frees + 1);
  CHECK(s4.live_bytes == s0.live_bytes);
}

TEST_CASE("allocator: a kernel's CachedBuffer takes its block from the cache and gives it back") {
  CachingOn caching;
  empty_cache();
  const size_t n = 1 << 20;  // f32: 4 MiB, what the large GPT's transposed keys take
  AllocatorStats s0 = allocator_stats();
  float* first = nullptr;
  {
    CachedBuffer<float> a(n);
    first = a.data();
    REQUIRE(first != nullptr);
    CHECK(a.size() == n);
    first[0] = 1.f, first[n - 1] = 2.f;  // all n elements are ours
    CachedBuffer<float> moved(std::move(a));
    CHECK(moved.data() == first);
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from buffer owns nothing
  }
  AllocatorStats s1 = allocator_stats();
  CHECK(s1.live_bytes == s0.live_bytes);  // freed exactly once
  CHECK(s1.cached_bytes == s0.cached_bytes + detail::alloc_class_size(4 * n));
  CachedBuffer<float> b;
  CHECK(b.empty());
  b.reserve(n - 100);  // the same class: the same block again, no page of it new
  CHECK(b.data() == first);
  CHECK(allocator_stats().cache_hits == s1.cache_hits + 1);
  float* kept = b.data();
  b.reserve(10);  // already large enough: unchanged
  CHECK(b.data() == kept);
}

TEST_CASE("allocator: reused blocks are NaN-filled when fill_uninitialized is on") {
  REQUIRE(fill_uninitialized());  // tests/main.cpp turns it on
  CachingOn caching;
  void* p = nullptr;
  {
    Tensor a = zeros({3000});
    p = a.raw_data();
  }
  Tensor b = empty({3000});  // same class: the zeroed block comes back
  CHECK(b.raw_data() == p);
  std::vector<float> v = b.to_vector<float>();
  bool all_nan = true;
  for (float x : v) all_nan = all_nan && std::isnan(x);
  CHECK(all_nan);
}

TEST_CASE("allocator: small blocks are cached in 64-byte classes, the limit and caching off return memory") {
  CachingOn caching;
  empty_cache();
  CHECK(detail::alloc_class_size(1) == 64);
  CHECK(detail::alloc_class_size(40) == 64);
  CHECK(detail::alloc_class_size(65) == 128);
  CHECK(detail::alloc_class_size(4095) == 4096);
  void* first = nullptr;
  {
    Tensor small = empty({10});
    first = small.raw_data();
  }
  CHECK(allocator_stats().cached_bytes == 64);
  {
    Tensor again = empty({16});  // 64 bytes: the same class, the same block
    CHECK(again.raw_data() == first);
  }
  empty_cache();

  const size_t old_limit = allocator_cache_limit();
  set_allocator_cache_limit(100000);
  {
    Tensor a = empty({20000}), b = empty({20000});  // 80 KB each: only one fits in the cache
  }
  CHECK(allocator_stats().cached_bytes == detail::alloc_class_size(80000));
  set_allocator_cache_limit(old_limit);

  set_allocator_caching(false);
  CHECK(allocator_stats().cached_bytes == 0);
  AllocatorStats s0 = allocator_stats();
  { Tensor a = empty({20000}); }
  CHECK(allocator_stats().cached_bytes == 0);
  CHECK(allocator_stats().os_frees == s0.os_frees + 1);
  set_allocator_caching(true);
}

TEST_CASE("allocator: no leak over repeated steps, thread-safe under parallel allocation") {
  CachingOn caching;
  empty_cache();
  auto step = [] {
    Tensor x = randn({64, 128}), w = randn({128, 256});
    Tensor y = matmul(x, w).sum();
    (void)y.item();
  };
  step();
  AllocatorStats s1 = allocator_stats();
  for (int i = 0; i < 5; ++i) step();
  AllocatorStats s2 = allocator_stats();
  CHECK(s2.live_bytes == s1.live_bytes);
  CHECK(s2.os_allocs == s1.os_allocs);  // every cacheable block came from the cache
  CHECK(s2.cached_bytes == s1.cached_bytes);

  // Allocate and free from several threads at once; the books must balance.
  AllocatorStats before = allocator_stats();
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([w] {
      for (int i = w; i < 200; i += 4) {
        Tensor t = empty({int64_t(1024 + 512 * (i % 7))});
        static_cast<float*>(t.raw_data())[0] = 1.0f;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(allocator_stats().live_bytes == before.live_bytes);
  empty_cache();
}

}  // namespace tz::testing
