// Synthetic tasks: shapes, determinism, option errors, and well-posedness: a brute-force
// causal solver per task reads only inputs[0..t] and must find an answer exactly at the
// scored positions, equal to the target there.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "core/creation.h"
#include "core/error.h"
#include "core/text.h"
#include "core/random.h"
#include "data/tasks.h"

using namespace tz;
using namespace tz::data;

namespace {

// A solver sees the prefix x[0..t] and returns the answer at t, or -1 if t asks nothing.
using Solver = std::function<int64_t(const std::vector<int64_t>& prefix, const TaskOptions& o)>;

int64_t last_index_before(const std::vector<int64_t>& x, int64_t token, size_t end) {
  for (size_t j = end; j-- > 0;)
    if (x[j] == token) return int64_t(j);
  return -1;
}

int64_t solve_copy(const std::vector<int64_t>& x, const TaskOptions&) {
  int64_t sep = last_index_before(x, kSepToken, x.size());
  if (sep < 0) return -1;
  int64_t k = int64_t(x.size()) - 1 - sep;  // answers so far; the copy has sep tokens
  return k < sep ? x[size_t(k)] : -1;
}

int64_t solve_selective_copy(const std::vector<int64_t>& x, const TaskOptions&) {
  int64_t mark = last_index_before(x, kSepToken, x.size());
  if (mark < 0) return -1;
  std::vector<int64_t> data;
  for (int64_t j = 0; j < mark; ++j)
    if (x[size_t(j)] != kNoiseToken) data.push_back(x[size_t(j)]);
  size_t k = x.size() - 1 - size_t(mark);
  return k < data.size() ? data[k] : -1;
}

int64_t solve_mqar(const std::vector<int64_t>& x, const TaskOptions& o) {
  const int64_t K = (o.vocab_size - 1) / 2, q = x.back();
  if (q < 1 || q >= 1 + K) return -1;  // not a key
  int64_t j = last_index_before(x, q, x.size() - 1);
  return j >= 0 ? x[size_t(j + 1)] : -1;  // the value stored right after the key
}

int64_t solve_induction(const std::vector<int64_t>& x, const TaskOptions&) {
  if (x.back() != kSepToken) return -1;
  int64_t j = last_index_before(x, kSepToken, x.size() - 1);
  return j >= 0 ? x[size_t(j + 1)] : -1;
}

int64_t solve_passkey(const std::vector<int64_t>& x, const TaskOptions&) {
  int64_t q = last_index_before(x, kQueryToken, x.size());
  int64_t key = last_index_before(x, kSepToken, x.size());
  if (q < 0 || key < 0) return -1;
  std::vector<int64_t> digits;
  for (size_t j = size_t(key) + 1; j < x.size() && x[j] >= kDigit0Token && x[j] < kDigit0Token + 10; ++j)
    digits.push_back(x[j]);
  size_t k = x.size() - 1 - size_t(q);
  return k < digits.size() ? digits[k] : -1;
}

Solver solver_for(const std::string& name) {
  if (name == "copy") return solve_copy;
  if (name == "selective_copy") return solve_selective_copy;
  if (name == "mqar") return solve_mqar;
  if (name == "induction_heads") return solve_induction;
  if (name == "passkey") return solve_passkey;
  FAIL("no solver for ", name);
  return {};
}

// Scored positions per example for the resolved options.
int64_t expected_scored(const Task& task) {
  const TaskOptions& o = task.options();
  std::string n = task.name();
  if (n == "copy" || n == "selective_copy") return o.copy_len;
  if (n == "mqar") return o.num_queries;
  if (n == "induction_heads") return 1;
  return o.passkey_digits;
}

// Checks shapes, id ranges, the mask and every answer against the solver.
void check_well_posed(const Task& task, int64_t batch, uint64_t seed) {
  Generator gen(seed);
  Batch b = task.sample(batch, gen);
  const int64_t T = task.seq_len(), V = task.vocab_size();
  REQUIRE(b.inputs.shape() == Shape{batch, T});
  REQUIRE(b.targets.shape() == Shape{batch, T});
  REQUIRE(b.inputs.dtype() == DType::i64);
  REQUIRE(b.targets.dtype() == DType::i64);
  std::vector<int64_t> x = b.inputs.to_vector<int64_t>(), y = b.targets.to_vector<int64_t>();
  Solver solve = solver_for(task.name());
  for (int64_t r = 0; r < batch; ++r) {
    int64_t scored = 0;
    std::vector<int64_t> prefix;
    for (int64_t t = 0; t < T; ++t) {
      int64_t xi = x[size_t(r * T + t)], yi = y[size_t(r * T + t)];
      REQUIRE((xi >= 0 && xi < V));
      REQUIRE((yi == kIgnoreIndex || (yi >= 0 && yi < V)));
      prefix.push_back(xi);
      int64_t answer = solve(prefix, task.options());
      // The solver finds a question exactly where the target is scored, and agrees.
      REQUIRE_MESSAGE(answer == (yi == kIgnoreIndex ? -1 : yi), task.name(), " row ", r,
                      " position ", t, ": solver ", answer, ", target ", yi);
      scored += yi != kIgnoreIndex;
    }
    CHECK(scored == expected_scored(task));
  }
}

}  // namespace

TEST_CASE("tasks: registry lists every task and each is well posed at several settings") {
  CHECK(task_names() == std::vector<std::string>{"copy", "selective_copy", "mqar",
                                                 "induction_heads", "passkey"});
  const std::vector<TaskOptions> settings = {
      {},
      {.vocab_size = 16, .seq_len = 24, .copy_len = 3, .num_pairs = 4, .num_queries = 2,
       .passkey_digits = 3},
      {.vocab_size = 200, .seq_len = 257, .num_pairs = 40, .passkey_digits = 8},
  };
  for (const std::string& name : task_names()) {
    for (size_t i = 0; i < settings.size(); ++i) {
      CAPTURE(name);
      CAPTURE(i);
      auto task = make_task(name, settings[i]);
      CHECK(task->name() == name);
      CHECK(!task->description().empty());
      check_well_posed(*task, 24, 100 + i);
    }
  }
}

TEST_CASE("tasks: defaults are resolved and visible in options") {
  CHECK(make_task("copy", {.seq_len = 64})->options().copy_len == 32);
  CHECK(make_task("selective_copy", {.seq_len = 64})->options().copy_len == 8);
  CHECK(make_task("mqar", {.num_pairs = 5})->options().num_queries == 5);
}

TEST_CASE("tasks: sampling is deterministic for the generator state") {
  for (const std::string& name : task_names()) {
    CAPTURE(name);
    auto task = make_task(name, {});
    Generator g1(5), g2(5), g3(6);
    Batch a = task->sample(8, g1), b = task->sample(8, g2), c = task->sample(8, g3);
    CHECK(a.inputs.to_vector<int64_t>() == b.inputs.to_vector<int64_t>());
    CHECK(a.targets.to_vector<int64_t>() == b.targets.to_vector<int64_t>());
    CHECK(a.inputs.to_vector<int64_t>() != c.inputs.to_vector<int64_t>());
    Batch d = task->sample(8, g1);  // the generator moved on
    CHECK(a.inputs.to_vector<int64_t>() != d.inputs.to_vector<int64_t>());
  }
}

TEST_CASE("tasks: answers vary so a constant guess cannot score") {
  for (const std::string& name : task_names()) {
    CAPTURE(name);
    auto task = make_task(name, {});
    Generator gen(9);
    std::vector<int64_t> y = task->sample(64, gen).targets.to_vector<int64_t>();
    std::vector<int64_t> seen;
    for (int64_t v : y)
      if (v != kIgnoreIndex && std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
    CHECK(seen.size() >= 5);
  }
}

TEST_CASE("tasks: options are checked with clear errors") {
  CHECK_THROWS_WITH_AS(make_task("mqar", {.seq_len = 64, .num_pairs = 30}),
                       doctest::Contains("too many pairs for the length"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("mqar", {.seq_len = 64, .num_pairs = 30}),
                       doctest::Contains("= 90 positions, but seq_len is 64"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("mqar", {.vocab_size = 16, .num_pairs = 8}),
                       doctest::Contains("exceeds the 7 distinct keys of vocab_size 16"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("mqar", {.num_pairs = 4, .num_queries = 5}),
                       doctest::Contains("num_queries"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("copy", {.seq_len = 64, .copy_len = 33}),
                       doctest::Contains("copy_len must be in [1, 32]"), tz::Error);
  CHECK_THROWS_AS(make_task("selective_copy", {.seq_len = 10, .copy_len = 6}), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("passkey", {.vocab_size = 12}),
                       doctest::Contains("vocab_size must be >= 14"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("passkey", {.seq_len = 10, .passkey_digits = 5}),
                       doctest::Contains("passkey_digits"), tz::Error);
  CHECK_THROWS_AS(make_task("induction_heads", {.seq_len = 2}), tz::Error);
  CHECK_THROWS_AS(make_task("copy", {.vocab_size = 3}), tz::Error);
  CHECK_THROWS_AS(make_task("copy", {})->sample(0, default_generator()), tz::Error);
}

TEST_CASE("tasks: unknown names list the valid ones and the nearest") {
  CHECK_THROWS_WITH_AS(make_task("mqr"), doctest::Contains("did you mean 'mqar'"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("selectve_copy"),
                       doctest::Contains("did you mean 'selective_copy'"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("induction"), doctest::Contains("did you mean 'induction_heads'"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(make_task("xyz"),
                       doctest::Contains("copy, selective_copy, mqar, induction_heads, passkey"),
                       tz::Error);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("mqar", "mqar") == 0);
}

TEST_CASE("tasks: length sweep at L and 2L and 4L") {
  auto fixed = length_sweep("mqar", {.seq_len = 32, .num_pairs = 4});
  REQUIRE(fixed.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(fixed[i].factor == int64_t(1) << i);
    CHECK(fixed[i].task->seq_len() == 32 << i);
    CHECK(fixed[i].task->options().num_pairs == 4);     // same amount to recall
    CHECK(fixed[i].task->vocab_size() == 64);          // same vocabulary
    check_well_posed(*fixed[i].task, 8, 1);
  }
  auto scaled = length_sweep("mqar", {.seq_len = 32, .num_pairs = 4}, {1, 2, 4}, true);
  CHECK(scaled[2].task->options().num_pairs == 16);
  CHECK(scaled[2].task->options().num_queries == 16);
  // copy_len resolved at L stays fixed unless counts scale.
  auto copy = length_sweep("copy", {.seq_len = 16}, {1, 3});
  CHECK(copy[1].task->seq_len() == 48);
  CHECK(copy[1].task->options().copy_len == 8);
  for (auto& e : copy) check_well_posed(*e.task, 8, 2);
  for (const std::string& name : task_names())
    for (auto& e : length_sweep(name, {.vocab_size = 128, .seq_len = 48}, {1, 2, 4}, true)) check_well_posed(*e.task, 4, 3);
  CHECK_THROWS_AS(length_sweep("mqar", {.vocab_size = 16, .seq_len = 32, .num_pairs = 4}, {1, 4}, true),
                  tz::Error);  // 16 pairs exceed the 7 keys of the vocabulary
}

TEST_CASE("accuracy: counts only scored positions from ids or logits") {
  Tensor targets = from_vector(std::vector<int64_t>{-100, 5, 6, -100, 7, 8}, {2, 3});
  Tensor pred = from_vector(std::vector<int64_t>{0, 5, 0, 9, 7, 0}, {2, 3});
  CHECK(accuracy(pred, targets) == doctest::Approx(0.5));
  CHECK(accuracy(targets, targets) == doctest::Approx(1.0));
  // Logits [2, 3, V]: the argmax is taken over the last dim.
  const int64_t V = 10;
  std::vector<float> logits(size_t(2 * 3 * V), 0.f);
  std::vector<int64_t> ids = {1, 5, 6, 2, 7, 3};  // right on 5, 6, 7; wrong on 8
  for (size_t i = 0; i < ids.size(); ++i) logits[i * V + size_t(ids[i])] = 1.f;
  CHECK(accuracy(from_vector(logits, {2, 3, V}), targets) == doctest::Approx(0.75));

  // On a task batch, the targets themselves score 1 and a constant guess scores 0.
  auto task = make_task("mqar", {});
  Generator gen(1);
  Batch b = task->sample(4, gen);
  CHECK(accuracy(b.targets, b.targets) == doctest::Approx(1.0));
  CHECK(accuracy(zeros(b.targets.shape(), DType::i64), b.targets) == doctest::Approx(0.0));

  CHECK_THROWS_WITH_AS(accuracy(full({2, 2}, -100, DType::i64), full({2, 2}, -100, DType::i64)),
                       doctest::Contains("no scored positions"), tz::Error);
  CHECK_THROWS_AS(accuracy(pred, from_vector(std::vector<int64_t>{1, 2}, {2})), tz::Error);
  CHECK_THROWS_AS(accuracy(from_vector(logits, {6, V}), targets), tz::Error);
}
