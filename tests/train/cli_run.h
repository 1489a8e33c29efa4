// Running the `tensorzoo` tool in a new process from a test, and reading what it left.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tz::testing {

struct CliRun {
  int status;  // exit status (-1: killed by a signal)
  std::string out, err;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The scratch directory of this test process (CTest runs test cases in parallel processes).
inline std::filesystem::path cli_scratch() {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("tz_test_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// `tensorzoo <args>` through the shell (args may quote), its output captured; with a
// timeout, a run that takes longer is killed (status 124, from timeout(1)).
inline CliRun run_cli(const std::string& args, int timeout_s = 0) {
  static int calls = 0;
  const std::filesystem::path dir = cli_scratch();
  const std::string tag = std::to_string(calls++);
  const std::string out = (dir / ("stdout_" + tag)).string(), err = (dir / ("stderr_" + tag)).string();
  const std::string cli =
      (timeout_s > 0 ? "timeout " + std::to_string(timeout_s) + " " : std::string()) + TZ_BINARY_DIR + "/tensorzoo";
  const int rc = std::system((cli + " " + args + " > " + out + " 2> " + err).c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out), read_file(err)};
}

// An empty directory path under the scratch directory, for a run's --out.
inline std::string fresh_dir(const std::string& name) {
  const std::filesystem::path p = cli_scratch() / name;
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace tz::testing
