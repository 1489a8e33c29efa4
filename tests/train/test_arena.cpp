// The arena's results.csv and table: a short real run on mqar_zoology at two evaluation
// lengths, and the writer on hand-made results (values, a failed length).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "models/keys.h"
#include "train/arena.h"

namespace fs = std::filesystem;
using namespace tz;
using arena::closest_on_grid;
using arena::GridMatch;

namespace {
std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    rows.push_back(cells);
  }
  return rows;
}

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("tz_test_arena_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  return dir;
}
}  // namespace

TEST_CASE("arena: results.csv and the table carry the task's accuracy at each eval length") {
  arena::Options o;
  o.models = arena::entries_from_ids("gpt");
  o.task = "mqar_zoology";
  o.vocab = 32;
  o.task_options.num_pairs = 2;
  o.steps = 3;
  o.batch = 4;
  o.seq_len = 16;
  o.warmup = 1;
  o.eval_lengths = {1, 2};
  o.eval_batches = 2;
  o.out_dir = fresh_dir("run").string();
  std::vector<arena::Result> results = arena::run(o);
  REQUIRE(results.size() == 1);
  const arena::Result& r = results[0];
  REQUIRE(r.val_error.empty());
  std::string table = arena::report(o, results);

  auto rows = read_csv(fs::path(o.out_dir) / "results.csv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0] == std::vector<std::string>{"model", "task", "seq_len", "params", "train_loss", "val_loss_x1", "acc@1x",
                                            "val_loss_x2", "acc@2x", "tokens_per_s", "peak_mb", "wall_s"});
  REQUIRE(rows[1].size() == rows[0].size());
  CHECK(rows[1][0] == "gpt");
  CHECK(rows[1][1] == "mqar_zoology");
  CHECK(rows[1][2] == "16");
  for (int64_t m : {1, 2}) {
    const double acc = std::stod(rows[1][m == 1 ? 6 : 8]);
    CHECK((acc >= 0 && acc <= 1));
    CHECK(acc == doctest::Approx(r.val_accuracy.at(m)).epsilon(1e-5));
    // mqar_zoology scores N = 2 queries per example: accuracy moves in steps of
    // 1 / (2 * batch * eval_batches) = 1/16.
    CHECK(acc * 16 == doctest::Approx(std::round(acc * 16)).epsilon(1e-4));
    CHECK(std::stod(rows[1][m == 1 ? 5 : 7]) > 0);  // the loss beside it
  }
  CHECK(table.find("| val loss @16 | acc@1x | val loss @32 | acc@2x |") != std::string::npos);
  CHECK(table.find("| gpt | ") != std::string::npos);
  fs::remove_all(fs::path(o.out_dir).parent_path());
}

TEST_CASE("arena: a length that could not be evaluated leaves its accuracy cells empty") {
  arena::Options o;
  o.task = "copy";
  o.seq_len = 32;
  o.eval_lengths = {1, 4};
  o.out_dir = fresh_dir("writer").string();
  arena::Result r;
  r.name = "m";
  r.params = 10;
  r.train_loss = 1.5;
  r.val_loss[1] = 0.5;
  r.val_accuracy[1] = 0.25;
  r.val_error[4] = "context too short";
  r.curve = {{1, 2.0}, {2, 1.5}};
  std::string table = arena::report(o, {r});
  auto rows = read_csv(fs::path(o.out_dir) / "results.csv");
  REQUIRE(rows.size() == 2);
  REQUIRE(rows[1].size() == 12);
  CHECK(rows[0][6] == "acc@1x");
  CHECK(rows[0][8] == "acc@4x");
  CHECK(rows[1][1] == "copy");
  CHECK(std::stod(rows[1][6]) == doctest::Approx(0.25));
  CHECK(rows[1][7].empty());
  CHECK(rows[1][8].empty());
  CHECK(table.find("| 0.5000 | 0.250 | n/a | n/a |") != std::string::npos);
  fs::remove_all(fs::path(o.out_dir).parent_path());
}

TEST_CASE("arena: closest_on_grid finds what trying every point finds, from a few probes") {
  // The plain search the arena did before: every k, the first with the smallest gap.
  auto every = [](int64_t n, int64_t target, const std::function<int64_t(int64_t)>& f) {
    int64_t best = 1, gap = -1;
    for (int64_t k = 1; k <= n; ++k)
      if (const int64_t g = std::llabs(f(k) - target); gap < 0 || g < gap) gap = g, best = k;
    return best;
  };
  const std::vector<std::function<int64_t(int64_t)>> counts = {
      [](int64_t k) { return 12 * 64 * k * k * 2 + 64 * 8 * k + 1000; },                   // a model: a d^2 + b d + c
      [](int64_t k) { return (8 * k * 8 / 3 + 63) / 64 * 64 * 8 * k * 3 + 256 * 8 * k; },  // SwiGLU-like rounding
      [](int64_t k) { return 5 * k; },                                                     // linear
      [](int64_t k) { return k * k * k + (k % 2); },                                       // cubic, bumpy
  };
  for (size_t c = 0; c < counts.size(); ++c)
    for (int64_t n : {1, 2, 3, 5, 128, 512})
      for (int64_t target :
           {int64_t(-5), int64_t(0), int64_t(7), int64_t(1000), int64_t(123457), int64_t(5000000), int64_t(1) << 40}) {
        CAPTURE(c);
        CAPTURE(n);
        CAPTURE(target);
        int64_t calls = 0;
        const GridMatch m = closest_on_grid(n, target, [&](int64_t k) {
          REQUIRE((k >= 1 && k <= n));
          ++calls;
          return counts[c](k);
        });
        CHECK(m.k == every(n, target, counts[c]));
        CHECK(m.count == counts[c](m.k));
        CHECK(m.probes == calls);
        CHECK(m.probes <= 3 + 2 * 10);  // three for the fit, then gallop and bisect: logarithmic
      }
  // A tie goes to the smaller k: 10 and 20 are both 5 from 15.
  CHECK(closest_on_grid(10, 15, [](int64_t k) { return 10 * k; }).k == 1);
  CHECK(closest_on_grid(10, 25, [](int64_t k) { return 10 * k; }).k == 2);
  CHECK_THROWS_AS(closest_on_grid(0, 5, [](int64_t k) { return k; }), Error);
}

TEST_CASE("arena: --match-params picks the dims the exhaustive search picked, building a few models") {
  arena::Options o;
  o.models = arena::entries_from_ids("gpt,retnet,mamba");
  o.models.push_back({"swiglu", R"({"ffn": "glu_variants", "ffn_glu": "swiglu"})"});
  const int64_t target = arena::count_params(arena::model_config(o, o.models[0]));
  const int64_t max_dim = 160;  // the old search went to 1024: the same, on fewer dims to build
  for (size_t i = 1; i < o.models.size(); ++i) {
    const arena::Entry& e = o.models[i];
    CAPTURE(e.name);
    const int64_t step = 2 * arena::model_config(o, e).get(models::kHeads);
    int64_t best = 0, best_gap = -1;
    for (int64_t d = step; d <= max_dim; d += step) {  // the old exhaustive search
      const int64_t gap = std::llabs(arena::count_params(arena::model_config(o, e, d)) - target);
      if (best_gap < 0 || gap < best_gap) best_gap = gap, best = d;
    }
    std::vector<std::string> lines;
    const GridMatch m = arena::matching_dim(o, e, target, max_dim, [&](const std::string& l) { lines.push_back(l); });
    CHECK(m.k == best);
    CHECK(m.count == arena::count_params(arena::model_config(o, e, best)));
    MESSAGE(e.name, ": dim ", m.k, " (", m.count, " parameters for ", target, ") after ", m.probes, " builds, of ",
            max_dim / step);
    CHECK(m.probes <= 8);
    CHECK(lines.size() == size_t(m.probes) + 1);  // a line per model built, and the result
  }
}
