// Synthetic tasks: shapes, determinism, option errors, and well-posedness: a brute-force
// causal solver per task reads only inputs[0..t] and must find an answer exactly at the
// scored positions, equal to the target there.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/creation.h"
#include "core/error.h"
#include "core/random.h"
#include "core/text.h"
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

int64_t solve_mqar_zoology(const std::vector<int64_t>& x, const TaskOptions& o) {
  const int64_t t = int64_t(x.size()) - 1, N = o.num_pairs, q = x.back();
  if (t < 2 * N || q == kPadToken) return -1;  // a pair, or filler between the queries
  for (int64_t i = 0; i < N; ++i)
    if (x[size_t(2 * i)] == q) return x[size_t(2 * i + 1)];
  return -1;
}

// The answer at the i-th trailing marker is the i-th non-noise token before the markers.
int64_t solve_selective_copy_mamba(const std::vector<int64_t>& x, const TaskOptions& o) {
  const int64_t marker = o.vocab_size - 1;
  if (x.back() != marker) return -1;
  size_t first = x.size();
  while (first > 0 && x[first - 1] == marker) --first;
  std::vector<int64_t> data;
  for (size_t j = 0; j < first; ++j)
    if (x[j] != kPadToken) data.push_back(x[j]);
  size_t k = x.size() - 1 - first;
  return k < data.size() ? data[k] : -1;
}

int64_t solve_induction_mamba(const std::vector<int64_t>& x, const TaskOptions& o) {
  const int64_t special = o.vocab_size - 1;
  if (x.back() != special) return -1;
  int64_t j = last_index_before(x, special, x.size() - 1);
  return j >= 0 ? x[size_t(j + 1)] : -1;
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
  if (name == "copy" || name == "copy_blank") return solve_copy;  // both read the first half
  if (name == "selective_copy") return solve_selective_copy;
  if (name == "mqar") return solve_mqar;
  if (name == "induction_heads") return solve_induction;
  if (name == "mqar_zoology") return solve_mqar_zoology;
  if (name == "selective_copy_mamba") return solve_selective_copy_mamba;
  if (name == "induction_heads_mamba") return solve_induction_mamba;
  if (name == "passkey") return solve_passkey;
  FAIL("no solver for ", name);
  return {};
}

// Scored positions per example for the resolved options.
int64_t expected_scored(const Task& task) {
  const TaskOptions& o = task.options();
  std::string n = task.name();
  if (n == "copy" || n == "copy_blank" || n == "selective_copy" || n == "selective_copy_mamba") return o.copy_len;
  if (n == "mqar" || n == "mqar_zoology") return o.num_queries;
  if (n == "induction_heads" || n == "induction_heads_mamba") return 1;
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
      REQUIRE_MESSAGE(answer == (yi == kIgnoreIndex ? -1 : yi), task.name(), " row ", r, " position ", t, ": solver ",
                      answer, ", target ", yi);
      scored += yi != kIgnoreIndex;
    }
    CHECK(scored == expected_scored(task));
  }
}

}  // namespace

TEST_CASE("tasks: registry lists every task and each is well posed at several settings") {
  CHECK(task_names() == std::vector<std::string>{"copy", "copy_blank", "selective_copy", "selective_copy_mamba", "mqar",
                                                 "mqar_zoology", "induction_heads", "induction_heads_mamba",
                                                 "passkey"});
  const std::vector<TaskOptions> settings = {
      {},
      {.vocab_size = 16, .seq_len = 24, .copy_len = 3, .num_pairs = 4, .num_queries = 2, .passkey_digits = 3},
      {.vocab_size = 200, .seq_len = 257, .num_pairs = 40, .passkey_digits = 8},
  };
  for (const std::string& name : task_names()) {
    for (size_t i = 0; i < settings.size(); ++i) {
      CAPTURE(name);
      CAPTURE(i);
      TaskOptions o = settings[i];
      if (name == "mqar_zoology") o.num_queries = 0;  // it queries every pair
      auto task = make_task(name, o);
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
  CHECK(make_task("mqar_zoology", {.num_pairs = 5})->options().num_queries == 5);
  // vocab_size 0 is each task's default: the papers' for their forms.
  CHECK(make_task("mqar", {})->vocab_size() == 64);
  CHECK(make_task("mqar_zoology", {})->vocab_size() == 8192);
  CHECK(make_task("selective_copy_mamba", {})->vocab_size() == 16);
  CHECK(make_task("induction_heads_mamba", {})->vocab_size() == 16);
  CHECK(make_task("selective_copy_mamba", {.seq_len = 4096})->options().copy_len == 16);
  CHECK(make_task("selective_copy_mamba", {.seq_len = 40})->options().copy_len == 10);
  CHECK(make_task("mqar_zoology", {.vocab_size = 100})->vocab_size() == 100);
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
  CHECK_THROWS_WITH_AS(make_task("mqar", {.num_pairs = 4, .num_queries = 5}), doctest::Contains("num_queries"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(make_task("copy", {.seq_len = 64, .copy_len = 33}),
                       doctest::Contains("copy_len must be in [1, 32]"), tz::Error);
  CHECK_THROWS_AS(make_task("selective_copy", {.seq_len = 10, .copy_len = 6}), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("passkey", {.vocab_size = 12}), doctest::Contains("vocab_size must be >= 14"),
                       tz::Error);
  CHECK_THROWS_WITH_AS(make_task("passkey", {.seq_len = 10, .passkey_digits = 5}), doctest::Contains("passkey_digits"),
                       tz::Error);
  CHECK_THROWS_AS(make_task("induction_heads", {.seq_len = 2}), tz::Error);
  CHECK_THROWS_AS(make_task("copy", {.vocab_size = 3}), tz::Error);
  CHECK_THROWS_AS(make_task("copy", {})->sample(0, default_generator()), tz::Error);
}

TEST_CASE("tasks: unknown names list the valid ones and the nearest") {
  CHECK_THROWS_WITH_AS(make_task("mqr"), doctest::Contains("did you mean 'mqar'"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("selectve_copy"), doctest::Contains("did you mean 'selective_copy'"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("induction"), doctest::Contains("did you mean 'induction_heads'"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("xyz"),
                       doctest::Contains("copy, copy_blank, selective_copy, selective_copy_mamba, mqar, "
                                         "mqar_zoology, induction_heads, induction_heads_mamba, "
                                         "passkey"),
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
    CHECK(fixed[i].task->options().num_pairs == 4);  // same amount to recall
    CHECK(fixed[i].task->vocab_size() == 64);        // same vocabulary
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
    for (auto& e : length_sweep(name, {.vocab_size = 128, .seq_len = 48}, {1, 2, 4}, true))
      check_well_posed(*e.task, 4, 3);
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

// ---- the papers' forms ---------------------------------------------------------------------

namespace {

struct Rows {
  int64_t B, T;
  std::vector<int64_t> x, y;
  int64_t in(int64_t r, int64_t t) const { return x[size_t(r * T + t)]; }
  int64_t out(int64_t r, int64_t t) const { return y[size_t(r * T + t)]; }
};
Rows sample_rows(const Task& task, int64_t batch, uint64_t seed) {
  Generator gen(seed);
  Batch b = task.sample(batch, gen);
  return {batch, task.seq_len(), b.inputs.to_vector<int64_t>(), b.targets.to_vector<int64_t>()};
}

// Zoology's slot law: P(g) = (g + 1)^(a - 1) / sum, g in [0, S).
std::vector<double> slot_law(int64_t S, double a) {
  std::vector<double> p(static_cast<size_t>(S));
  double sum = 0;
  for (int64_t g = 0; g < S; ++g) sum += p[size_t(g)] = std::pow(double(g + 1), a - 1);
  for (double& v : p) v /= sum;
  return p;
}

double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& p) {
  double n = 0, chi = 0;
  for (int64_t c : counts) n += double(c);
  for (size_t g = 0; g < p.size(); ++g) {
    double e = n * p[g];
    chi += (double(counts[g]) - e) * (double(counts[g]) - e) / e;
  }
  return chi;
}

// Least-squares slope of log(count) against log(g + 1) over the slots seen.
double log_log_slope(const std::vector<int64_t>& counts) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0;
  for (size_t g = 0; g < counts.size(); ++g) {
    if (counts[g] == 0) continue;
    double lx = std::log(double(g + 1)), ly = std::log(double(counts[g]));
    sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly, n += 1;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// Counts of the slot at which pair `pair` is queried, over `batch` examples.
std::vector<int64_t> slot_counts(const TaskOptions& o, int64_t pair, int64_t batch, uint64_t seed) {
  auto task = make_task("mqar_zoology", o);
  const int64_t N = task->options().num_pairs, S = (task->seq_len() - 2 * N) / 2;
  Rows r = sample_rows(*task, batch, seed);
  std::vector<int64_t> counts(size_t(S), 0);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t key = r.in(b, 2 * pair);
    int64_t found = 0;
    for (int64_t t = 2 * N; t < r.T; ++t) {
      if (r.in(b, t) != key) continue;
      REQUIRE((t - 2 * N) % 2 == 0);
      ++counts[size_t((t - 2 * N) / 2)];
      ++found;
    }
    REQUIRE(found == 1);
  }
  return counts;
}

}  // namespace

TEST_CASE("mqar_zoology: disjoint key and value halves, no repeated key, every pair asked once") {
  for (const TaskOptions& o :
       {TaskOptions{.vocab_size = 64, .seq_len = 64, .num_pairs = 8},
        TaskOptions{.vocab_size = 20, .seq_len = 37, .num_pairs = 9}, TaskOptions{.seq_len = 512, .num_pairs = 64}}) {
    auto task = make_task("mqar_zoology", o);
    const int64_t V = task->vocab_size(), N = o.num_pairs, half = V / 2;
    CAPTURE(V);
    CAPTURE(N);
    Rows r = sample_rows(*task, 200, 7);
    for (int64_t b = 0; b < r.B; ++b) {
      std::vector<int64_t> keys, values;
      for (int64_t i = 0; i < N; ++i) {
        const int64_t k = r.in(b, 2 * i), v = r.in(b, 2 * i + 1);
        REQUIRE((k >= 1 && k < half));  // keys [1, V/2)
        REQUIRE((v >= half && v < V));  // values [V/2, V)
        REQUIRE(std::find(keys.begin(), keys.end(), k) == keys.end());
        REQUIRE(std::find(values.begin(), values.end(), v) == values.end());
        keys.push_back(k);
        values.push_back(v);
        REQUIRE(r.out(b, 2 * i) == kIgnoreIndex);
        REQUIRE(r.out(b, 2 * i + 1) == kIgnoreIndex);
      }
      std::vector<int64_t> asked(size_t(N), 0);
      for (int64_t t = 2 * N; t < r.T; ++t) {
        const int64_t q = r.in(b, t), target = r.out(b, t);
        if (q == kPadToken) {  // filler is never scored
          REQUIRE(target == kIgnoreIndex);
          continue;
        }
        REQUIRE((t - 2 * N) % 2 == 0);  // queries sit on even slots after the pairs
        REQUIRE(2 * N + 2 * ((r.T - 2 * N) / 2) > t);
        auto it = std::find(keys.begin(), keys.end(), q);
        REQUIRE(it != keys.end());
        const size_t i = size_t(it - keys.begin());
        REQUIRE_MESSAGE(target == values[i], "row ", b, " position ", t);  // its pair's value
        ++asked[i];
      }
      for (int64_t a : asked) REQUIRE(a == 1);
    }
  }
}

TEST_CASE("mqar_zoology: query slots follow Zoology's power law") {
  // T = 64, N = 4: S = 28 slots. Pair 0 takes the first slot drawn, so its law is exactly
  // P(g); pair 1 takes the second, P(j) = sum_{i != j} p_i p_j / (1 - p_i).
  const TaskOptions o{.vocab_size = 64, .seq_len = 64, .num_pairs = 4};
  const int64_t S = 28, M = 20000;
  const double kChi27 = 55.48;  // chi-square, 27 degrees of freedom, 0.1 % upper tail
  std::vector<double> p = slot_law(S, 0.01), second(size_t(S), 0.0);
  for (int64_t j = 0; j < S; ++j)
    for (int64_t i = 0; i < S; ++i)
      if (i != j) second[size_t(j)] += p[size_t(i)] * p[size_t(j)] / (1 - p[size_t(i)]);

  std::vector<int64_t> first_counts = slot_counts(o, 0, M, 11);
  const double chi_first = chi_square(first_counts, p);
  const double chi_second = chi_square(slot_counts(o, 1, M, 12), second);
  const double slope = log_log_slope(first_counts);
  MESSAGE("chi-square pair 0: ", chi_first, ", pair 1: ", chi_second, ", log-log slope ", slope);
  CHECK(chi_first < kChi27);
  CHECK(chi_second < kChi27);
  CHECK(std::abs(slope - (0.01 - 1)) < 0.1);

  // Uniform placement (power_a = 1) fails the same test by far; another a follows its own law.
  TaskOptions uniform = o;
  uniform.power_a = 1.0;
  std::vector<int64_t> uniform_counts = slot_counts(uniform, 0, M, 11);
  const double chi_uniform = chi_square(uniform_counts, p);
  MESSAGE("uniform placement against the a = 0.01 law: chi-square ", chi_uniform, ", slope ",
          log_log_slope(uniform_counts));
  CHECK(chi_uniform > 100 * kChi27);
  CHECK(std::abs(log_log_slope(uniform_counts)) < 0.15);
  CHECK(chi_square(uniform_counts, slot_law(S, 1.0)) < kChi27);
  TaskOptions half = o;
  half.power_a = 0.5;
  CHECK(chi_square(slot_counts(half, 0, M, 13), slot_law(S, 0.5)) < kChi27);
}

TEST_CASE("mqar_zoology: random_fill changes only the filler") {
  const TaskOptions zeros{.vocab_size = 256, .seq_len = 128, .num_pairs = 8};
  TaskOptions filled = zeros;
  filled.random_fill = true;
  int64_t filler = 0, changed = 0;
  std::vector<int64_t> seen;
  for (uint64_t seed = 0; seed < 16; ++seed) {  // one example per seed: the fill draws last
    Rows a = sample_rows(*make_task("mqar_zoology", zeros), 1, seed);
    Rows b = sample_rows(*make_task("mqar_zoology", filled), 1, seed);
    CHECK(a.y == b.y);  // the same pairs, queries and answers for the same seed
    for (size_t i = 0; i < a.x.size(); ++i) {
      if (a.y[i] != kIgnoreIndex || int64_t(i) % a.T < 16) {
        REQUIRE(a.x[i] == b.x[i]);  // pairs and queries untouched
        continue;
      }
      REQUIRE(a.x[i] == kPadToken);
      REQUIRE((b.x[i] >= 0 && b.x[i] < 256));
      ++filler;
      changed += b.x[i] != kPadToken;
      if (std::find(seen.begin(), seen.end(), b.x[i]) == seen.end()) seen.push_back(b.x[i]);
    }
  }
  CHECK(changed > filler * 9 / 10);
  CHECK(seen.size() > 150);
}

TEST_CASE("mqar_zoology: impossible sizes name the option and the limit") {
  CHECK_THROWS_WITH_AS(make_task("mqar_zoology", {.vocab_size = 16, .seq_len = 64, .num_pairs = 8}),
                       doctest::Contains("num_pairs 8 exceeds the 7 distinct keys of vocab_size 16"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("mqar_zoology", {.seq_len = 60, .num_pairs = 16}),
                       doctest::Contains("seq_len 60 is too short for num_pairs 16"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("mqar_zoology", {.seq_len = 60, .num_pairs = 16}),
                       doctest::Contains("seq_len must be >= 4 * num_pairs = 64"), tz::Error);
  CHECK_NOTHROW(make_task("mqar_zoology", {.seq_len = 64, .num_pairs = 16}));
  CHECK_THROWS_WITH_AS(make_task("mqar_zoology", {.power_a = 0}), doctest::Contains("power_a must be > 0"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("mqar_zoology", {.num_pairs = 4, .num_queries = 2}),
                       doctest::Contains("num_queries must be 0 or num_pairs = 4, got 2"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("mqar_zoology", {.num_pairs = 0}), doctest::Contains("num_pairs must be >= 1"),
                       tz::Error);
}

TEST_CASE("selective_copy_mamba: noise, data and markers in the paper's layout") {
  for (const TaskOptions& o : {TaskOptions{}, TaskOptions{.seq_len = 4096},  // the paper's size
                               TaskOptions{.vocab_size = 6, .seq_len = 10, .copy_len = 5}}) {
    auto task = make_task("selective_copy_mamba", o);
    const int64_t T = task->seq_len(), n = task->options().copy_len, V = task->vocab_size();
    const int64_t marker = V - 1, R = T - n;
    CAPTURE(T);
    Rows r = sample_rows(*task, T > 1000 ? 4 : 300, 5);
    int64_t early = 0, late = 0;  // data in the first and the last quarter of the region
    for (int64_t b = 0; b < r.B; ++b) {
      std::vector<int64_t> data;
      for (int64_t t = 0; t < R; ++t) {
        const int64_t v = r.in(b, t);
        REQUIRE(r.out(b, t) == kIgnoreIndex);
        REQUIRE(v != marker);
        if (v == kPadToken) continue;
        REQUIRE((v >= 1 && v < marker));
        data.push_back(v);
        early += t < R / 4;
        late += t >= R - R / 4;
      }
      REQUIRE(int64_t(data.size()) == n);
      for (int64_t i = 0; i < n; ++i) {
        REQUIRE(r.in(b, R + i) == marker);            // the answers are never shown
        REQUIRE(r.out(b, R + i) == data[size_t(i)]);  // the i-th data token, in order
      }
    }
    if (R >= 8 && n < R / 2) {
      CHECK(early > 0);
      CHECK(late > 0);
    }
  }
  CHECK(make_task("selective_copy_mamba", {.seq_len = 4096})->options().copy_len == 16);
  CHECK_THROWS_WITH_AS(make_task("selective_copy_mamba", {.seq_len = 64, .copy_len = 33}),
                       doctest::Contains("copy_len must be in [1, 32]"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("selective_copy_mamba", {.vocab_size = 3}),
                       doctest::Contains("vocab_size must be >= 4"), tz::Error);
}

TEST_CASE("induction_heads_mamba: the special token twice, the answer after the first") {
  for (const TaskOptions& o : {TaskOptions{}, TaskOptions{.seq_len = 256},  // training length
                               TaskOptions{.vocab_size = 3, .seq_len = 3}}) {
    auto task = make_task("induction_heads_mamba", o);
    const int64_t T = task->seq_len(), special = task->vocab_size() - 1;
    CAPTURE(T);
    Rows r = sample_rows(*task, 4000, 8);
    int64_t min_p = T, max_p = -1, zeros = 0;
    for (int64_t b = 0; b < r.B; ++b) {
      int64_t p = -1, specials = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t v = r.in(b, t);
        REQUIRE((v >= 0 && v <= special));
        REQUIRE((r.out(b, t) == kIgnoreIndex) == (t != T - 1));  // only the last is scored
        zeros += v == 0;
        if (v != special) continue;
        ++specials;
        if (p < 0) p = t;
      }
      REQUIRE(specials == 2);
      REQUIRE(r.in(b, T - 1) == special);
      REQUIRE(p <= T - 3);
      REQUIRE(r.out(b, T - 1) == r.in(b, p + 1));
      min_p = std::min(min_p, p), max_p = std::max(max_p, p);
    }
    CHECK(min_p == 0);  // the first special reaches both ends of [0, T - 3]
    CHECK(max_p == T - 3);
    CHECK(zeros > 0);  // id 0 is data here
  }
  // Test lengths up to 2^20 as in the paper: one example, in linear time.
  Rows r = sample_rows(*make_task("induction_heads_mamba", {.seq_len = int64_t(1) << 20}), 1, 2);
  CHECK(std::count(r.x.begin(), r.x.end(), 15) == 2);
  CHECK(r.x.back() == 15);
  CHECK_THROWS_WITH_AS(make_task("induction_heads_mamba", {.vocab_size = 2}),
                       doctest::Contains("vocab_size must be >= 3"), tz::Error);
  CHECK_THROWS_WITH_AS(make_task("induction_heads_mamba", {.seq_len = 2}), doctest::Contains("seq_len must be >= 3"),
                       tz::Error);
}

TEST_CASE("copy_blank: no answer is in the inputs from the separator on, so an encoder cannot read it") {
  auto task = make_task("copy_blank", {.vocab_size = 16, .seq_len = 20, .copy_len = 6});
  Generator gen(7);
  Batch b = task->sample(64, gen);
  std::vector<int64_t> x = b.inputs.to_vector<int64_t>(), y = b.targets.to_vector<int64_t>();
  for (int64_t r = 0; r < 64; ++r) {
    const int64_t* xr = x.data() + r * 20;
    const int64_t* yr = y.data() + r * 20;
    CHECK(xr[6] == kSepToken);
    for (int64_t t = 7; t < 20; ++t) CHECK(xr[t] == kPadToken);
    for (int64_t i = 0; i < 6; ++i) CHECK(yr[6 + i] == xr[i]);  // the i-th blank asks for x(i+1)
  }
}
