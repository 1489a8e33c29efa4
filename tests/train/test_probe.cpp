// `tensorzoo probe` (cli/cmd_probe.cpp) on a tiny trained run, in a new process.
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/train/cli_run.h"

namespace fs = std::filesystem;
using tz::testing::run_cli;

namespace {
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("probe prints top-activating prefixes and value tokens of a trained run's FFN keys") {
  const fs::path run = tz::testing::fresh_dir("probe_run");
  tz::testing::CliRun t = run_cli(
      "train --dim 32 --depth 2 --heads 2 --context 32 --seq-len 32 --batch 4 --builtin-bytes 40000"
      " --steps 30 --eval-every 30 --log-every 30 --warmup 2 --sample 0 --threads 1"
      " --config '{\"activation\": \"relu\"}' --out " +
      run.string());
  REQUIRE_MESSAGE(t.status == 0, t.err);

  tz::testing::CliRun p = run_cli("probe --run " + run.string() + " --layer 1 --keys 3 --top 4 --max-tokens 2048");
  REQUIRE_MESSAGE(p.status == 0, p.err);
  CHECK(p.out.find("layer 1 of 2: 128 keys (relu)") != std::string::npos);
  CHECK(count(p.out, "\nkey ") == 3);
  CHECK(count(p.out, "top tokens of v_i E^T: ") == 3);
  CHECK(count(p.out, "]\n") >= 12);  // 4 prefixes per key, each ending with its trigger byte

  // Given keys, in the order given.
  tz::testing::CliRun q = run_cli("probe --run " + run.string() + " --layer 0 --keys 7,2 --top 2 --max-tokens 512");
  REQUIRE_MESSAGE(q.status == 0, q.err);
  CHECK(q.out.find("\nkey 7\n") < q.out.find("\nkey 2\n"));

  // Bad arguments are one clear line and exit status 2.
  tz::testing::CliRun bad = run_cli("probe --run " + run.string() + " --layer 5");
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--layer 5 does not exist: the model has 2 blocks") != std::string::npos);
  tz::testing::CliRun bad_key = run_cli("probe --run " + run.string() + " --keys 3,999");
  CHECK(bad_key.status == 2);
  CHECK(bad_key.err.find("not a key index in [0, 128)") != std::string::npos);
  // Fewer bytes than one window: the flag at fault is named, not the validation text.
  tz::testing::CliRun few = run_cli("probe --run " + run.string() + " --max-tokens 10");
  CHECK(few.status == 2);
  CHECK(few.err.find("--max-tokens 10 is less than one window of 32 tokens (--window 128, cut to the model's "
                     "context): give at least 32, or a smaller --window") != std::string::npos);
  fs::remove_all(run);
}
