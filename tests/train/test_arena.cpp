// The arena's results.csv and table: a short real run on mqar_zoology at two evaluation
// lengths, and the writer on hand-made results (values, a failed length).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "train/arena.h"

namespace fs = std::filesystem;
using namespace tz;

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
