#include "core/parallel.h"

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifdef TZ_HAVE_OPENMP
#include <omp.h>
#endif

#ifdef TZ_HAVE_OPENBLAS
extern "C" void openblas_set_num_threads(int);
#endif

namespace tz {

namespace {
int initial_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
#ifdef TZ_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Per calling thread, as OpenMP's own thread count is: an application that trains or
// generates in several threads sets each one's count without a race.
int& thread_count() {
  static thread_local int n = initial_threads();
  return n;
}

bool detect_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool detect_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the zmm state (XCR0).
  return detect_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

SimdLevel clamp_level(SimdLevel want) {
  if (want == SimdLevel::avx512 && !detect_avx512()) want = SimdLevel::avx2;
  if (want == SimdLevel::avx2 && !detect_avx2_fma()) want = SimdLevel::off;
  return want;
}

// The best level, capped by TZ_SIMD (unknown values are ignored: the best level).
SimdLevel default_level() {
  SimdLevel want = SimdLevel::avx512;
  if (const char* env = std::getenv("TZ_SIMD")) {
    const std::string v = env;
    if (v == "off" || v == "scalar" || v == "0")
      want = SimdLevel::off;
    else if (v == "avx2")
      want = SimdLevel::avx2;
  }
  return clamp_level(want);
}

SimdLevel g_simd = default_level();
}  // namespace

namespace {
bool read_wait_policy_passive() {
  const char* e = std::getenv("OMP_WAIT_POLICY");
  return e && strcasecmp(e, "passive") == 0;  // OpenMP reads the value case-insensitively
}
#ifdef TZ_HAVE_OPENMP
const bool g_openmp_passive = read_wait_policy_passive();  // as OpenMP read it at start-up
#else
const bool g_openmp_passive = false;  // no OpenMP: passive regions need our own threads
#endif
std::atomic<bool> g_passive_sizing{read_wait_policy_passive()};
std::atomic<bool> g_passive_policy{read_wait_policy_passive()};
thread_local bool t_in_pool_chunk = false;  // this thread runs a chunk of our own pool

// Our parallel regions go to our own pool when waiting must be passive and OpenMP spins.
bool use_own_pool() { return g_passive_policy.load(std::memory_order_relaxed) && !g_openmp_passive; }

void set_blas_threads(int n) {
#ifdef TZ_HAVE_OPENBLAS
  // OpenBLAS's threads are OpenMP's: while our regions run on our own pool, it keeps to one
  // thread, so that no spinning OpenMP thread competes with ours.
  openblas_set_num_threads(use_own_pool() ? 1 : n);
#else
  (void)n;
#endif
}

// Threads that sleep on a condition variable between jobs: the passive wait that OpenMP gives
// only when OMP_WAIT_POLICY=PASSIVE is set before it starts. One job at a time; a caller that
// finds the pool busy (another application thread's region) runs its chunks itself. A job is
// split exactly as the OpenMP loop splits it, so results do not depend on who runs it.
class SleepingPool {
 public:
  void run(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t)>& fn) {
    Job job{.n = n, .chunks = chunks, .fn = &fn};
    std::unique_lock busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {
      work(job);
      rethrow(job);
      return;
    }
    {
      std::lock_guard lock(m_);
      while (int64_t(threads_.size()) < chunks - 1) threads_.emplace_back([this] { worker(); });
      job_ = &job;
      ++generation_;
    }
    wake_.notify_all();
    work(job);  // the caller takes chunks too
    std::unique_lock lock(m_);
    done_.wait(lock, [&] { return job.finished.load() == chunks && active_ == 0; });
    job_ = nullptr;
    lock.unlock();
    rethrow(job);
  }

 private:
  struct Job {
    int64_t n = 0, chunks = 0;
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    std::atomic<int64_t> next{0}, finished{0};
    std::mutex error_mutex;
    std::exception_ptr error;
  };

  // Takes chunks until none is left; chunk c is [n c / chunks, n (c + 1) / chunks).
  static void work(Job& job) {
    t_in_pool_chunk = true;
    for (int64_t c; (c = job.next.fetch_add(1)) < job.chunks;) {
      const int64_t b = job.n * c / job.chunks, e = job.n * (c + 1) / job.chunks;
      try {
        if (b < e) (*job.fn)(b, e);
      } catch (...) {
        std::lock_guard lock(job.error_mutex);
        if (!job.error) job.error = std::current_exception();
      }
      job.finished.fetch_add(1);
    }
    t_in_pool_chunk = false;
  }

  static void rethrow(Job& job) {
    if (job.error) std::rethrow_exception(job.error);
  }

  void worker() {
    uint64_t seen = 0;
    std::unique_lock lock(m_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      Job* job = job_;
      if (!job) continue;  // woke after the job was done
      ++active_;
      lock.unlock();
      work(*job);
      lock.lock();
      --active_;
      done_.notify_one();
    }
  }

  std::mutex busy_;  // held by the caller whose job the pool runs
  std::mutex m_;     // guards the fields below
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
  int active_ = 0;  // workers inside the current job
};

// Never destroyed: its threads sleep until the process ends.
SleepingPool& sleeping_pool() {
  static SleepingPool* pool = new SleepingPool;
  return *pool;
}
}  // namespace

void set_num_threads(int n) {
  n = std::max(n, 1);
  thread_count() = n;
#ifdef TZ_HAVE_OPENMP
  omp_set_num_threads(n);
#endif
  set_blas_threads(n);
}

int get_num_threads() { return thread_count(); }

bool in_parallel_region() {
  if (t_in_pool_chunk) return true;
#ifdef TZ_HAVE_OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}

void set_wait_policy(WaitPolicy policy) {
  const bool passive = policy == WaitPolicy::passive;
  g_passive_policy.store(passive, std::memory_order_relaxed);
  set_passive_wait_sizing(passive);
  set_blas_threads(get_num_threads());
}

const char* parallel_backend() {
  if (use_own_pool()) return "tensorzoo threads";
#ifdef TZ_HAVE_OPENMP
  return "OpenMP";
#else
  return "serial";
#endif
}

WaitPolicy wait_policy() {
  return g_passive_policy.load(std::memory_order_relaxed) ? WaitPolicy::passive : WaitPolicy::spin;
}

bool passive_wait_sizing() { return g_passive_sizing.load(std::memory_order_relaxed); }
void set_passive_wait_sizing(bool on) { g_passive_sizing.store(on, std::memory_order_relaxed); }

int64_t parallel_grain() {
  // Measured, small GPT decoding on 2 threads with OMP_WAIT_POLICY=PASSIVE: 600-1850 tok/s
  // with the 32k grain (slower than 1 thread), 3350-3590 with 512k (1 thread: 2900-3600).
  return passive_wait_sizing() ? int64_t(1) << 19 : int64_t(1) << 15;
}

void parallel_for(int64_t n, int64_t cost_per_item, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t kGrain = parallel_grain();
  int threads = get_num_threads();
  int64_t work = n * std::max<int64_t>(cost_per_item, 1);
  if (threads <= 1 || work < kGrain || n < 2 || in_parallel_region()) {
    fn(0, n);
    return;
  }
  const int64_t chunks = std::min<int64_t>({int64_t(threads), n, std::max<int64_t>(work / kGrain, 1)});
  if (use_own_pool()) {
    if (chunks > 1) {
      sleeping_pool().run(n, chunks, fn);
    } else {
      fn(0, n);
    }
    return;
  }
#ifdef TZ_HAVE_OPENMP
#pragma omp parallel for num_threads(int(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) fn(b, e);
  }
#else
  fn(0, n);
#endif
}

void TeamBarrier::wait() {
  if (n_ <= 1) return;
  const unsigned gen = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {  // the last one in opens it
    arrived_.store(0, std::memory_order_relaxed);
    generation_.store(gen + 1, std::memory_order_release);
    generation_.notify_all();  // no system call unless a member went to sleep
    return;
  }
  for (int spins = 0; spins < 512; ++spins) {
    if (generation_.load(std::memory_order_acquire) != gen) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  // The others are late (a busy machine took their core): sleep until the barrier opens.
  while (generation_.load(std::memory_order_acquire) == gen) generation_.wait(gen, std::memory_order_acquire);
}

void parallel_team(int threads, const std::function<void(int, int, TeamBarrier&)>& fn) {
  TeamBarrier one(1);
#ifdef TZ_HAVE_OPENMP
  if (threads > 1 && !in_parallel_region() && !use_own_pool()) {
    TeamBarrier barrier(threads);
#pragma omp parallel num_threads(threads)
    {
      // OpenMP may give fewer threads than asked (a limit on nesting or on threads): then
      // thread 0 does all the work alone.
      if (omp_get_num_threads() == threads)
        fn(omp_get_thread_num(), threads, barrier);
      else if (omp_get_thread_num() == 0)
        fn(0, 1, one);
    }
    return;
  }
#endif
  fn(0, 1, one);
}

bool cpu_has_avx2_fma() {
  static bool has = detect_avx2_fma();
  return has;
}
bool cpu_has_avx512() {
  static bool has = detect_avx512();
  return has;
}
void set_simd_level(SimdLevel level) { g_simd = clamp_level(level); }
SimdLevel simd_level() { return g_simd; }
const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512:
      return "avx512";
    case SimdLevel::avx2:
      return "avx2";
    default:
      return "off";
  }
}
void set_simd_enabled(bool on) { g_simd = on ? default_level() : SimdLevel::off; }
bool simd_enabled() { return g_simd != SimdLevel::off; }

}  // namespace tz
