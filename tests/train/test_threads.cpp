// Thread safety as an embedding application uses it: models generating in two threads at
// once, and two trainers in two threads, give what each gives alone. Under the thread
// sanitizer (scripts/test.sh --tsan) these run with no race reported.
#include <filesystem>
#include <thread>

#include "core/parallel.h"
#include "models/generate.h"
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
