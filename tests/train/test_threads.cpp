// Thread safety as an embedding application uses it: models generating in two threads at
// once, and two trainers in two threads, give what each gives alone; passive waiting runs
// parallel regions on tensorzoo's own sleeping threads with the same results. Under the
// thread sanitizer (scripts/test.sh --tsan) these run with no race reported.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "autograd/ops.h"
#include "core/parallel.h"
#include "embed/text_model.h"
#include "models/generate.h"
#include "models/weights.h"
#include "models/zoo.h"
#include "tests/test_util.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace tz;

namespace {
const char* kConfig = R"({"dim": 16, "depth": 1, "heads": 2, "context": 16, "dropout": 0.1})";

std::vector<int64_t> sample_from(uint64_t init_seed, uint64_t sample_seed) {
  set_num_threads(1);
  Generator gen(init_seed);
  auto model = zoo::make_lm(kConfig, gen);
  model->eval();
  return models::generate(*model, {84, 104, 101}, {.max_new_tokens = 40, .temperature = 1.0, .seed = sample_seed});
}

std::vector<double> train_losses(uint64_t seed, const std::string& name) {
  train::TrainOptions o;
  o.model = nn::Config::parse(kConfig);  // dropout 0.1: draws from the thread's generator
  o.builtin_bytes = 20000;
  o.steps = 6;
  o.batch = 2;
  o.seq_len = 16;
  o.eval_every = 3;
  o.eval_batches = 1;
  o.threads = 1;
  o.seed = seed;
  o.out_dir = (fs::temp_directory_path() / ("tz_test_threads_" + std::to_string(::getpid())) / name).string();
  fs::remove_all(o.out_dir);
  train::Trainer t(o);
  t.run();
  std::vector<double> losses;
  for (const auto& r : t.history()) losses.push_back(r.loss);
  fs::remove_all(o.out_dir);
  return losses;
}
}  // namespace

TEST_CASE("threads: two models generating at once give what each gives alone") {
  const auto a = sample_from(1, 7), b = sample_from(2, 8);
  REQUIRE(a != b);
  std::vector<int64_t> ta, tb;
  std::thread x([&] { ta = sample_from(1, 7); }), y([&] { tb = sample_from(2, 8); });
  x.join();
  y.join();
  CHECK(ta == a);
  CHECK(tb == b);
}

TEST_CASE("threads: two trainers in two threads give what each gives alone") {
  const auto a = train_losses(1, "alone_a"), b = train_losses(2, "alone_b");
  REQUIRE(a.size() == 6);
  REQUIRE(a != b);
  std::vector<double> ta, tb;
  std::thread x([&] { ta = train_losses(1, "thread_a"); }), y([&] { tb = train_losses(2, "thread_b"); });
  x.join();
  y.join();
  CHECK(ta == a);
  CHECK(tb == b);
}

TEST_CASE("threads: two TextModels loaded from one file generate at once as each does alone") {
  Generator gen(3);
  auto lm = zoo::make_lm(kConfig, gen);
  const std::string path =
      (fs::temp_directory_path() / ("tz_test_threads_model_" + std::to_string(::getpid()) + ".safetensors")).string();
  models::save_weights(path, *lm, models::WeightsDType::f32);
  auto text = [&](uint64_t seed) {
    set_num_threads(1);
    TextModel model = TextModel::load(path);
    return model.generate("The ", {.max_new_tokens = 40, .temperature = 1.0, .seed = seed});
  };
  const std::string a = text(1), b = text(2);
  REQUIRE(a != b);
  std::string ta, tb;
  std::thread x([&] { ta = text(1); }), y([&] { tb = text(2); });
  x.join();
  y.join();
  CHECK(ta == a);
  CHECK(tb == b);
  fs::remove(path);
}

namespace {
// Restores the wait policy, the sizing and the thread count a test changed.
struct PolicyGuard {
  WaitPolicy policy = wait_policy();
  bool sizing = passive_wait_sizing();
  int threads = get_num_threads();
  ~PolicyGuard() {
    set_wait_policy(policy);
    set_passive_wait_sizing(sizing);
    set_num_threads(threads);
  }
};
}  // namespace

TEST_CASE("threads: passive waiting splits regions as OpenMP does, on sleeping threads, from several callers") {
  PolicyGuard guard;
  set_num_threads(2);
  set_wait_policy(WaitPolicy::passive);
  CHECK(wait_policy() == WaitPolicy::passive);
  CHECK(passive_wait_sizing());
  MESSAGE("passive regions run on: ", std::string(parallel_backend()));
  const int64_t n = 3 * parallel_grain();
  // Every index once, in two chunks, each inside the region; chunks slow enough that the
  // second thread takes one (a fast one may all be done by the caller before it wakes).
  std::vector<int> seen(static_cast<size_t>(n), 0);
  std::mutex m;
  std::set<std::thread::id> ids;
  std::atomic<int> inside{0}, chunks{0};
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) ++seen[static_cast<size_t>(i)];
    inside += in_parallel_region() ? 1 : 0;
    ++chunks;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard lock(m);
    ids.insert(std::this_thread::get_id());
  });
  CHECK(std::count(seen.begin(), seen.end(), 1) == n);
  if (std::string(parallel_backend()) != "serial") {
    CHECK(chunks.load() == 2);
    CHECK(inside.load() == 2);
    CHECK(ids.size() == 2);
  }
  // An error in a chunk reaches the caller (on tensorzoo's threads; OpenMP would end the process).
  if (std::string(parallel_backend()) == "tensorzoo threads")
    CHECK_THROWS_WITH_AS(parallel_for(n, 1,
                                      [&](int64_t b, int64_t) {
                                        if (b > 0) throw Error("chunk failed");
                                      }),
                         "chunk failed", Error);
  // Two application threads at once: each region is complete (one of them may run its
  // chunks itself while the other has the pool).
  std::vector<int64_t> sums(4, 0);
  auto region = [&](size_t k) {
    set_num_threads(2);
    for (int round = 0; round < 20; ++round) {
      std::vector<int64_t> part(2, 0);
      parallel_for(n, 1, [&](int64_t b, int64_t e) {
        int64_t s = 0;
        for (int64_t i = b; i < e; ++i) s += i;
        part[b == 0 ? 0 : 1] = s;
      });
      sums[k] += part[0] + part[1];
    }
  };
  std::thread x([&] { region(0); }), y([&] { region(1); });
  x.join();
  y.join();
  CHECK(sums[0] == 20 * (n * (n - 1) / 2));
  CHECK(sums[1] == sums[0]);
}

TEST_CASE("threads: results are the same under either wait policy") {
  PolicyGuard guard;
  set_num_threads(2);
  Generator gen(5);
  const Tensor a = randn({300, 200}, gen), b = randn({200, 250}, gen), x = randn({4, 4096}, gen);
  auto model = zoo::make_lm(R"({"dim": 128, "depth": 2, "heads": 4, "context": 64})", gen);
  model->eval();
  auto compute = [&] {
    set_passive_wait_sizing(false);  // the small grain, so that these sizes run threaded
    std::vector<Tensor> out{matmul(a, b), softmax(x), sum(x * x)};
    const std::vector<int64_t> text =
        models::generate(*model, {84, 104, 101}, {.max_new_tokens = 30, .temperature = 1.0, .seed = 2});
    out.push_back(from_vector(text, {int64_t(text.size())}));
    return out;
  };
  set_wait_policy(WaitPolicy::spin);
  const std::vector<Tensor> spin = compute();
  set_wait_policy(WaitPolicy::passive);
  const std::vector<Tensor> passive = compute();
  for (size_t i = 0; i < spin.size(); ++i) CHECK(testing::max_abs_diff(passive[i], spin[i]) == 0);
}

TEST_CASE("threads: a team runs its members at once, its barrier orders their phases, one member where none can") {
  PolicyGuard guard;
  set_wait_policy(WaitPolicy::spin);
  set_num_threads(2);
  auto team_size = [] {
    std::atomic<int> size{0}, members{0};
    std::atomic<bool> ordered{true};
    std::vector<std::atomic<int>> data(64);
    parallel_team(2, [&](int t, int n, TeamBarrier& barrier) {
      if (t == 0) size = n;
      members.fetch_add(1);
      for (int phase = 1; phase <= 300; ++phase) {  // each phase sees every member's writes of the last
        for (int i = t; i < 64; i += n) data[size_t(i)].store(phase, std::memory_order_relaxed);
        barrier.wait();
        for (auto& d : data)
          if (d.load(std::memory_order_relaxed) != phase) ordered = false;
        barrier.wait();
      }
    });
    CHECK(members == size);
    CHECK(ordered);
    return size.load();
  };
  CHECK(team_size() == (std::string(parallel_backend()) == "OpenMP" ? 2 : 1));
  int inside = 0;  // a team asked for inside a parallel region has one member
  parallel_for(2, int64_t(1) << 30, [&](int64_t b, int64_t) {
    if (b == 0) inside = team_size();
  });
  CHECK(inside == 1);
  set_wait_policy(WaitPolicy::passive);
  if (std::string(parallel_backend()) == "tensorzoo threads") CHECK(team_size() == 1);
}
