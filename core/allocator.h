// The caching allocator behind Storage.
//
// A training step allocates the same activation and gradient sizes every step. Handing
// those blocks back to the OS (glibc returns big blocks with munmap) and asking again costs
// a page fault per 4 KB page on every step. So freed blocks go to a free list for their size
// class and are handed out again. Small blocks are cached too: decoding one token makes
// hundreds of tensors of a few hundred bytes, and 64-byte-aligned allocations from glibc
// (aligned_alloc, free) took ~10 % of a small model's decoding time.
//
// Size classes: below kFineClassMax bytes, multiples of 64; above, 4 per power of two (a
// request of n bytes, 2^e <= n < 2^(e+1), is rounded up to a multiple of 2^(e-2)), so a
// block is at most 25% larger than asked for and a class serves every request it rounds
// to. Blocks are 64-byte aligned.
// The cache is bounded (set_allocator_cache_limit; default 1 GiB): a freed block that would
// push it past the limit goes back to the OS instead. empty_cache() releases everything
// cached: call it after switching to other shapes (another model, batch or sequence
// length), since blocks of sizes no longer asked for stay cached up to the limit.
// (Releasing the cache automatically on a miss was tried: a training step's backward misses
// while the forward's freed activations sit in the cache, so it thrashed - 68 of 187 blocks
// per step came from the OS again at batch 32.) One mutex guards the free lists: allocations
// come from the thread that runs the ops (kernels' threads allocate nothing), so contention
// is no concern.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace tz {

struct AllocatorStats {
  size_t live_bytes = 0;    // handed out now (class sizes)
  size_t peak_bytes = 0;    // max of live_bytes since start or reset_allocator_peak()
  size_t cached_bytes = 0;  // in the free lists, ready for reuse
  uint64_t requests = 0;    // allocations asked for (one per Storage)
  uint64_t request_bytes = 0;
  uint64_t cache_hits = 0;  // requests served from the free lists
  uint64_t os_allocs = 0;   // blocks obtained from the OS (aligned_alloc)
  uint64_t os_bytes = 0;
  uint64_t os_frees = 0;  // blocks returned to the OS
};

AllocatorStats allocator_stats();
void reset_allocator_peak();  // peak_bytes = live_bytes
// Returns every cached block to the OS.
void empty_cache();
// Caching on (default; off in AddressSanitizer builds) or off (every block goes back to the
// OS when freed; for measuring and for sanitizers). Turning it off also empties the cache.
void set_allocator_caching(bool on);
bool allocator_caching();
void set_allocator_cache_limit(size_t bytes);
size_t allocator_cache_limit();

namespace detail {
constexpr size_t kFineClassMax = 4096;  // below: size classes every 64 bytes
// The size actually reserved for a request of n bytes (>= n, a multiple of 64).
size_t alloc_class_size(size_t n);
// A block of at least n bytes (64-byte aligned); *capacity receives its class size, which
// must be passed back to free_block.
void* alloc_block(size_t n, size_t* capacity);
void free_block(void* p, size_t capacity);
}  // namespace detail

// n elements of T from the cache above, uninitialised: for a kernel's large temporaries (a
// transposed or packed copy of an operand) that every training step asks for again, which
// from glibc would be fresh pages, a page fault per 4 KiB, each time. Owns its block.
template <class T>
class CachedBuffer {
 public:
  CachedBuffer() = default;
  explicit CachedBuffer(size_t n) : n_(n) {
    if (n > 0) p_ = static_cast<T*>(detail::alloc_block(n * sizeof(T), &capacity_));
  }
  CachedBuffer(CachedBuffer&& o) noexcept : p_(o.p_), n_(o.n_), capacity_(o.capacity_) { o.p_ = nullptr; }
  CachedBuffer& operator=(CachedBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(capacity_, o.capacity_);
    return *this;
  }
  CachedBuffer(const CachedBuffer&) = delete;
  CachedBuffer& operator=(const CachedBuffer&) = delete;
  ~CachedBuffer() {
    if (p_) detail::free_block(p_, capacity_);
  }
  // A buffer of at least n elements (contents not kept when it grows).
  void reserve(size_t n) {
    if (n > n_) *this = CachedBuffer(n);
  }
  T* data() const { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return p_ == nullptr; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0, capacity_ = 0;
};

}  // namespace tz
