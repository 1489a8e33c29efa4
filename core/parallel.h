// Threads. One owner of the thread count: set_num_threads(n) sets it for our OpenMP regions
// and for OpenBLAS alike. OMP_NUM_THREADS is honoured at start-up. Work below a grain runs
// serially, and code already inside a parallel region never opens another one (so a
// threaded BLAS call is never made from inside our own parallel loops).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace tz {

void set_num_threads(int n);
int get_num_threads();
bool in_parallel_region();

// Parallel regions are sized for how idle OpenMP threads wait. With OMP_WAIT_POLICY=PASSIVE
// (read at start-up) they sleep, and waking one is a futex call of tens of microseconds, so
// a region must bring 16x more work to pay for it. set_passive_wait_sizing overrides what
// was read (the test suites turn it off, so that their sizes reach the threaded paths).
bool passive_wait_sizing();
void set_passive_wait_sizing(bool on);
// The least work (about n * cost_per_item operations) worth a parallel region: 32k, or 512k
// when sized for passive waiting.
int64_t parallel_grain();

// How idle threads wait between parallel regions. OpenMP's spin for a while before they sleep
// (about 3 ms with GCC's libgomp), unless the program started with OMP_WAIT_POLICY=PASSIVE:
// on a busy machine spinning threads take the cores the work needs (generating 120 tokens
// took 1.7-5.7 s spinning against 0.6-0.9 s passive). libgomp reads that variable once, when
// it loads, before main, so a program cannot change OpenMP's own policy later. Instead,
// set_wait_policy(WaitPolicy::passive) runs our parallel regions on tensorzoo's own threads,
// which sleep as soon as they are idle, with OpenBLAS on one thread, unless OpenMP was started
// passive already (then OpenMP runs them as before); it also sizes regions for passive
// waiting. It holds for the whole process. The default is passive when OMP_WAIT_POLICY=PASSIVE
// was set at start-up, spin otherwise. Results are the same under either policy.
enum class WaitPolicy { spin, passive };
void set_wait_policy(WaitPolicy policy);
WaitPolicy wait_policy();
// Who runs parallel regions now: "OpenMP", "tensorzoo threads" (passive waiting while OpenMP
// spins) or "serial" (a build without OpenMP, spinning).
const char* parallel_backend();

// Calls fn(begin, end) over chunks of [0, n). Runs serially when n * cost_per_item is below
// parallel_grain(), when there is one thread, or when already in a parallel region (ours or
// OpenMP's: in_parallel_region()).
// Chunks are static and contiguous, so results are deterministic for a fixed thread count.
void parallel_for(int64_t n, int64_t cost_per_item, const std::function<void(int64_t begin, int64_t end)>& fn);

// A team of threads that stay in one parallel region across many dependent phases, each
// thread taking its share of every phase by hand and waiting at the barrier between them
// (the decode plan, models/decode_plan.h, runs a whole token this way: a region per op would
// wake the threads dozens of times a token). The barrier spins (a pause loop), and after
// about 20 µs sleeps (a futex wait) so that a descheduled team member can have the core.
class TeamBarrier {
 public:
  explicit TeamBarrier(int n) : n_(n) {}
  void wait();
  int size() const { return n_; }

 private:
  int n_;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<unsigned> generation_{0};
};
// Runs fn(t, n, barrier) once on each of n threads, t = 0..n-1, all at the same time. n is
// `threads`, or 1 where a team cannot be had: one thread, inside a parallel region, no OpenMP,
// or while parallel regions run on tensorzoo's own sleeping pool (set_wait_policy), which
// does not promise that every chunk of a job runs at once. fn must not throw (a thread that
// left early would leave the others waiting at the barrier).
void parallel_team(int threads, const std::function<void(int t, int n, TeamBarrier& barrier)>& fn);

// Whether this CPU runs our AVX2+FMA kernels (checked once at start-up).
bool cpu_has_avx2_fma();
// Whether this CPU (and OS) runs our AVX-512 kernels: AVX-512 F/DQ/BW/VL plus FMA.
bool cpu_has_avx512();

// The widest SIMD our kernels use. Most kernels only ask simd_enabled() (AVX2 or wider:
// they are AVX2 code); GEMM and GEMV also have AVX-512 paths chosen by simd_level().
enum class SimdLevel { off, avx2, avx512 };
// The default is the best the CPU has, capped by the environment variable
// TZ_SIMD=off|avx2|avx512 (read once at start-up; to compare paths in one build).
// set_simd_level clamps to what the CPU supports.
void set_simd_level(SimdLevel level);
SimdLevel simd_level();
const char* simd_level_name(SimdLevel level);
// Turns the SIMD kernels off at run time (tests compare both paths on one machine);
// set_simd_enabled(true) restores the default level (above).
void set_simd_enabled(bool on);
bool simd_enabled();

}  // namespace tz
