// The caching allocator: see allocator.h.
#include "core/allocator.h"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/sanitizers.h"

namespace tz {

namespace {
struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;  // class size -> blocks
  AllocatorStats stats;
  // Off by default under AddressSanitizer, so that every freed block really is freed and a
  // use after free is reported (a cached block would hide it).
  bool caching = !kAddressSanitizer;
  size_t limit = size_t(1) << 30;

  void release_all() {  // caller holds mu
    for (auto& [size, blocks] : free) {
      for (void* p : blocks) std::free(p);
      stats.os_frees += blocks.size();
    }
    free.clear();
    stats.cached_bytes = 0;
  }
};

// Never destroyed: Storage blocks owned by static tensors may be freed after main returns.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}
}  // namespace

namespace detail {
size_t alloc_class_size(size_t n) {
  n = std::max<size_t>(n, 1);
  if (n < kFineClassMax) return (n + 63) / 64 * 64;
  size_t step = std::bit_floor(n) / 4;  // >= 1024
  return (n + step - 1) / step * step;
}

void* alloc_block(size_t n, size_t* capacity) {
  const size_t cap = alloc_class_size(n);
  *capacity = cap;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    ++c.stats.requests;
    c.stats.request_bytes += n;
    c.stats.live_bytes += cap;
    c.stats.peak_bytes = std::max(c.stats.peak_bytes, c.stats.live_bytes);
    auto it = c.free.find(cap);
    if (it != c.free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= cap;
      ++c.stats.cache_hits;
      return p;
    }
    ++c.stats.os_allocs;
    c.stats.os_bytes += cap;
  }
  void* p = std::aligned_alloc(64, cap);
  if (!p) {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.live_bytes -= cap;
    throw Error(cat_str("out of memory allocating ", n, " bytes"));
  }
  return p;
}

void free_block(void* p, size_t capacity) {
  if (!p) return;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.live_bytes -= capacity;
    if (c.caching && c.stats.cached_bytes + capacity <= c.limit) {
      c.free[capacity].push_back(p);
      c.stats.cached_bytes += capacity;
      return;
    }
    ++c.stats.os_frees;
  }
  std::free(p);
}
}  // namespace detail

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void reset_allocator_peak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.peak_bytes = c.stats.live_bytes;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.release_all();
}

void set_allocator_caching(bool on) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.caching = on;
  if (!on) c.release_all();
}

bool allocator_caching() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.caching;
}

void set_allocator_cache_limit(size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit = bytes;
  if (c.stats.cached_bytes > bytes) c.release_all();
}

size_t allocator_cache_limit() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.limit;
}

}  // namespace tz
