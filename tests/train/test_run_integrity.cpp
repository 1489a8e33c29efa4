// A run directory under misuse: divergence, resume flags, edited checkpoints, interrupted
// writes, absurd arguments. Each case runs the tool in new processes, as a user would.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "tests/test_util.h"
#include "tests/train/cli_run.h"
#include "train/run_dir.h"

namespace fs = std::filesystem;
using namespace tz;
using testing::CliRun;
using testing::fresh_dir;
using testing::read_file;
using testing::run_cli;

namespace {
const std::string kTiny =
    " --dim 16 --depth 1 --heads 2 --context 16 --seq-len 16 --batch 2 --builtin-bytes 20000"
    " --eval-every 2 --log-every 1 --warmup 1 --sample 0 --threads 1";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A trained tiny run of `steps` steps in a fresh directory.
std::string trained(const std::string& name, int steps = 4) {
  const std::string dir = fresh_dir(name);
  CliRun r = run_cli("train" + kTiny + " --steps " + std::to_string(steps) + " --out " + dir);
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return dir;
}

// Rewrites one metadata field of a run's checkpoint.
void edit_metadata(const std::string& dir, const std::string& key, const std::string& value) {
  const std::string path = dir + "/checkpoint.safetensors";
  TensorFile f = load_safetensors(path);
  f.metadata[key] = value;
  save_safetensors(path, f.tensors, f.metadata);
}

std::vector<int64_t> logged_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  std::istringstream in(read_file(dir + "/log.csv"));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) steps.push_back(std::stoll(line));
  return steps;
}
}  // namespace

TEST_CASE("run: a learning rate that diverges stops the run at the step, keeps the last good checkpoint, exits 1") {
  const std::string dir = trained("diverge");
  const std::string good = read_file(dir + "/checkpoint.safetensors");
  CliRun r = run_cli("train --resume " + dir + " --steps 40 --lr 1e30 --grad-clip 0");
  CHECK(r.status == 1);
  CHECK(has(r.err, "fit: the "));
  CHECK((has(r.err, "is NaN at step ") || has(r.err, "is Inf at step ")));
  // Checkpoints come with each evaluation (every 2 steps): the newest is finite and loads.
  const TensorFile f = load_safetensors(dir + "/checkpoint.safetensors");
  for (const auto& [name, t] : f.tensors) CHECK_MESSAGE(testing::all_finite(t), name);
  const int64_t saved = std::stoll(f.metadata.at("step"));
  CHECK(saved >= 4);
  CHECK(run_cli("sample --run " + dir + " --tokens 4").status == 0);
  // The checkpoint is at or before the step that failed, which the log never passes.
  CHECK(logged_steps(dir).back() >= saved);

  // With --skip-nonfinite the bad batches are skipped, and at most 9 in a row.
  const std::string skip = trained("diverge_skip");
  CliRun s = run_cli("train --resume " + skip + " --steps 40 --lr 1e30 --grad-clip 0 --skip-nonfinite");
  CHECK(s.status == 1);
  CHECK(has(s.out, "(not finite: batch skipped)"));
  CHECK(has(s.err, "the 10th in a row"));
}

TEST_CASE("run: --resume honours the schedule flags, records them, and refuses every other flag by name") {
  const std::string dir = trained("resume_flags");
  CliRun r = run_cli("train --resume " + dir + " --steps 6 --lr 0.001 --warmup 3 --log-every 2 --sample 0");
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(has(r.out, "resuming " + dir +
                       " at step 4 of 6 with steps 4 -> 6, lr 0.002 -> 0.001, warmup 1 -> 3, "
                       "log_every 1 -> 2; the schedule as planned for 4 steps, then its final lr 0.001 (--replan: "
                       "plan over 6) (recorded in history.txt)"));
  CHECK(read_file(dir + "/history.txt") ==
        "step 4: resumed with steps 4 -> 6, lr 0.002 -> 0.001, warmup 1 -> 3, log_every 1 -> 2; the schedule as "
        "planned for 4 steps, then its final lr 0.001 (--replan: plan over 6)\n");
  const auto options =
      nlohmann::json::parse(load_safetensors(dir + "/checkpoint.safetensors").metadata.at("train_options"));
  CHECK(options.at("lr") == 0.001);
  CHECK(options.at("steps") == 6);
  CHECK(options.at("plan_steps") == 4);

  for (const std::string flag :
       {"--config '{}'", "--dim 32", "--depth 2", "--heads 4", "--context 32", "--seed 5", "--batch 3", "--seq-len 8",
        "--builtin-bytes 30000", "--shards 2", "--deterministic"}) {
    CAPTURE(flag);
    CliRun bad = run_cli("train --resume " + dir + " " + flag);
    CHECK(bad.status == 2);
    CHECK(has(bad.err, flag.substr(0, flag.find(' ')) + " cannot change a resumed run"));
    CHECK(has(bad.err, "with --resume you may give --bucket-mb, --data, --eval-every, --grad-clip"));
  }
  CliRun out = run_cli("train --resume " + dir + " --out " + dir + "_copy");
  CHECK(out.status == 2);
  CHECK(has(out.err, "--out: a resumed run stays in its directory"));
  for (const std::string steps : {"0", "-1"}) {
    CliRun bad = run_cli("train --resume " + dir + " --steps " + steps);
    CHECK(bad.status == 2);
    CHECK(has(bad.err, "--steps: Value " + steps + " not in range 1 to"));
  }
  // A data file that moved: the message says where the path came from and how to give another.
  const std::string text = fresh_dir("moved_text") + ".txt";
  std::ofstream(text) << std::string(30000, 'a');
  const std::string moved = fresh_dir("resume_moved");
  REQUIRE(run_cli("train" + kTiny + " --steps 2 --data " + text + " --out " + moved).status == 0);
  fs::rename(text, text + ".moved");
  CliRun lost = run_cli("train --resume " + moved + " --steps 3");
  CHECK(lost.status == 1);
  CHECK(has(lost.err, "trained on '" + text +
                          "' (its checkpoint's training options), which does not exist now; "
                          "restore the file, or give --data PATH"));
  CliRun found = run_cli("train --resume " + moved + " --steps 3 --data " + text + ".moved");
  CHECK_MESSAGE(found.status == 0, found.err);
  CHECK(has(read_file(moved + "/history.txt"), "data " + text + " -> " + text + ".moved"));

  CliRun same = run_cli("train --resume " + dir + " --steps 6");
  CHECK(same.status == 1);
  CHECK(has(same.err, "resume: steps 6 is not more than the 6 steps the run in " + dir + " has done"));
}

TEST_CASE("run: sample and --resume read one stored model config, an edited copy that disagrees is refused") {
  const std::string dir = trained("one_config", 2);
  TensorFile f = load_safetensors(dir + "/checkpoint.safetensors");
  auto options = nlohmann::json::parse(f.metadata.at("train_options"));
  CHECK(!options.contains("model"));  // stored once, as "config"
  // A checkpoint that also holds the model in its training options (as older ones do):
  // the same model is accepted by both commands ...
  options["model"] = nlohmann::json::parse(f.metadata.at("config"));
  edit_metadata(dir, "train_options", options.dump());
  CHECK(run_cli("sample --run " + dir + " --tokens 3").status == 0);
  CHECK(run_cli("train --resume " + dir + " --steps 3").status == 0);
  // ... a different one by both, with the same message.
  options = nlohmann::json::parse(load_safetensors(dir + "/checkpoint.safetensors").metadata.at("train_options"));
  options["model"] = nlohmann::json::parse(f.metadata.at("config"));
  options["model"]["dim"] = 32;
  edit_metadata(dir, "train_options", options.dump());
  for (const std::string& cmd : {"sample --run " + dir, "train --resume " + dir + " --steps 9"}) {
    CliRun r = run_cli(cmd);
    CHECK(r.status == 1);
    CHECK(has(r.err, "its model config ('config') and the model in its training options ('train_options') disagree"));
  }
}

TEST_CASE("run: edited checkpoints are reported by path, field and name") {
  const std::string dir = trained("edited", 2);
  const std::string path = dir + "/checkpoint.safetensors";
  const TensorFile original = load_safetensors(path);
  for (const auto& [key, value] : {std::pair{"step", "abc"}, {"elapsed_s", "-3"}, {"data_rng", "1 2 3"}}) {
    edit_metadata(dir, key, value);
    CliRun r = run_cli("train --resume " + dir + " --steps 5");
    CHECK(r.status == 1);
    CHECK(has(r.err, "checkpoint " + path + ": metadata '" + key + "' is '" + value + "'"));
    save_safetensors(path, original.tensors, original.metadata);
  }
  // A renamed tensor: the unexpected name and the missing one, with the path.
  std::map<std::string, Tensor> renamed = original.tensors;
  renamed["modeX.norm_f.weight"] = renamed.at("model.norm_f.weight");
  renamed.erase("model.norm_f.weight");
  save_safetensors(path, renamed, original.metadata);
  CliRun s = run_cli("sample --run " + dir);
  CHECK(s.status == 1);
  CHECK(has(s.err, "checkpoint " + path +
                       ": unexpected tensors (not model.*, optim.*, state.*, data.cursors): modeX.norm_f.weight"));
  CliRun r = run_cli("train --resume " + dir + " --steps 5");
  CHECK(r.status == 1);
  CHECK(has(r.err, "unexpected tensors (not model.*, optim.*, state.*, data.cursors): modeX.norm_f.weight"));
}

TEST_CASE("run: an interrupted write's temporary file is removed and the log is cut back to the checkpoint") {
  const std::string dir = trained("interrupted");
  std::ofstream(dir + "/checkpoint.safetensors.tmp.12345") << "half a checkpoint";
  // Rows a killed process logged after its last checkpoint (step 4), and a torn last line.
  std::ofstream(dir + "/log.csv", std::ios::app) << "5,1.0,,0.001,1,1,1\n6,1.0,,0.001,1,1,1\n7,1.";
  CliRun r = run_cli("train --resume " + dir + " --steps 6");
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(has(r.err, "removed checkpoint.safetensors.tmp.12345"));
  CHECK(!fs::exists(dir + "/checkpoint.safetensors.tmp.12345"));
  CHECK(logged_steps(dir) == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("run: crafted sizes and files in a checkpoint are errors naming them, never a crash or a hang") {
  const std::string dir = trained("crafted", 2);
  const std::string path = dir + "/checkpoint.safetensors";
  const TensorFile original = load_safetensors(path);
  auto config = nlohmann::json::parse(original.metadata.at("config"));
  config["dim"] = int64_t(1) << 62;
  edit_metadata(dir, "config", config.dump());
  CliRun s = run_cli("sample --run " + dir);
  CHECK(s.status == 1);
  CHECK(has(s.err, "key 'dim' is 4611686018427387904, outside [-2^31, 2^31]"));
  save_safetensors(path, original.tensors, original.metadata);

  auto options = nlohmann::json::parse(original.metadata.at("train_options"));
  options["batch"] = int64_t(1) << 62;
  edit_metadata(dir, "train_options", options.dump());
  CliRun r = run_cli("train --resume " + dir + " --steps 3");
  CHECK(r.status == 1);
  CHECK(has(r.err, "train_options: train: batch must be in [1, 65536], got 4611686018427387904"));
  save_safetensors(path, original.tensors, original.metadata);

  // A FIFO where the checkpoint should be: refused before reading (opening it would block).
  fs::remove(path);
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  for (const std::string& cmd : {"sample --run " + dir, "train --resume " + dir + " --steps 3"}) {
    CliRun f = run_cli(cmd, 20);
    CHECK(f.status == 1);
    CHECK(has(f.err, "is not a regular file (a directory, FIFO or device)"));
  }
  fs::remove(path);
}

TEST_CASE("run: absurd or negative numbers and huge text are one bounded line, never a crash") {
  for (const auto& [args, expected] :
       {std::pair{"train --seed -1", "--seed: must be an integer in [0, 2^64), got '-1'"},
        {"train --dim 4611686018427387904", "--dim: Value 4611686018427387904 not in range 1 to 65536"},
        {"train --batch 4611686018427387904", "--batch: Value 4611686018427387904 not in range"},
        {"train --threads 99999999999", "--threads"}}) {
    CAPTURE(args);
    CliRun r = run_cli(args);
    CHECK(r.status == 2);
    CHECK(has(r.err, expected));
  }
  CliRun deep = run_cli("train --config '{\"a\": " + std::string(100000, '[') + "'");
  CHECK(deep.status == 1);
  CHECK(has(deep.err, "--config: nested more than 64 levels deep"));
  CliRun huge = run_cli("train --config '{\"" + std::string(100000, 'k') + "\": 1}' --steps 1");
  CHECK(huge.status == 1);
  CHECK(huge.err.size() < 1100);
  CliRun inf = run_cli("train --config '{\"dim\": 9E999}'");
  CHECK(inf.status == 1);
  CHECK(has(inf.err, "--config: number 9E999 is out of the range of a double at dim"));
}

TEST_CASE("run: a model with a context of 1 generates past its first token") {
  const std::string dir = fresh_dir("context1");
  REQUIRE(run_cli("train --dim 16 --depth 1 --heads 2 --context 1 --seq-len 1 --batch 2 --builtin-bytes 20000"
                  " --steps 2 --sample 0 --threads 1 --out " +
                  dir)
              .status == 0);
  CliRun r = run_cli("sample --run " + dir + " --tokens 5 --prompt Th");
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.size() == std::string("Th").size() + 5 + 1);
}
