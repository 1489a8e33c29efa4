// `tensorzoo probe` (cli/cmd_probe.cpp) on a tiny trained run, in a new process.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {
const std::string kProbeCli = std::string(TZ_BINARY_DIR) + "/tensorzoo";

struct ProbeRun {
  int status;
  std::string out, err;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ProbeRun run_cli(const std::string& args) {
  static int calls = 0;
  fs::path dir = fs::temp_directory_path() / "tz_test_probe";
  fs::create_directories(dir);
  std::string tag = std::to_string(::getpid()) + "_" + std::to_string(calls++);
  std::string out = (dir / ("stdout_" + tag)).string(), err = (dir / ("stderr_" + tag)).string();
  int rc = std::system((kProbeCli + " " + args + " > " + out + " 2> " + err).c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_all(out), read_all(err)};
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("probe prints top-activating prefixes and value tokens of a trained run's FFN keys") {
  fs::path run = fs::temp_directory_path() / "tz_test_probe" / ("run_" + std::to_string(::getpid()));
  fs::remove_all(run);
  ProbeRun t = run_cli(
      "train --dim 32 --depth 2 --heads 2 --context 32 --seq-len 32 --batch 4 --builtin-bytes 40000"
      " --steps 30 --eval-every 30 --log-every 30 --warmup 2 --sample 0 --threads 1"
      " --config '{\"activation\": \"relu\"}' --out " +
      run.string());
  REQUIRE_MESSAGE(t.status == 0, t.err);

  ProbeRun p = run_cli("probe --run " + run.string() + " --layer 1 --keys 3 --top 4 --max-tokens 2048");
  REQUIRE_MESSAGE(p.status == 0, p.err);
  CHECK(p.out.find("layer 1 of 2: 128 keys (relu)") != std::string::npos);
  CHECK(count(p.out, "\nkey ") == 3);
  CHECK(count(p.out, "top tokens of v_i E^T: ") == 3);
  CHECK(count(p.out, "]\n") >= 12);  // 4 prefixes per key, each ending with its trigger byte

  // Given keys, in the order given.
  ProbeRun q = run_cli("probe --run " + run.string() + " --layer 0 --keys 7,2 --top 2 --max-tokens 512");
  REQUIRE_MESSAGE(q.status == 0, q.err);
  CHECK(q.out.find("\nkey 7\n") < q.out.find("\nkey 2\n"));

  // Bad arguments are one clear line and exit status 2.
  ProbeRun bad = run_cli("probe --run " + run.string() + " --layer 5");
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--layer 5 does not exist: the model has 2 blocks") != std::string::npos);
  ProbeRun bad_key = run_cli("probe --run " + run.string() + " --keys 3,999");
  CHECK(bad_key.status == 2);
  CHECK(bad_key.err.find("not a key index in [0, 128)") != std::string::npos);
  fs::remove_all(run);
}
