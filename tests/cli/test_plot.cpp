// The plot helper (cli/plot.h) and its callers: a file name, title or label is only ever
// data to gnuplot. Directories named to break out of a shell command, a gnuplot string or a
// gnuplot file name (`x'; touch PWNED; echo '`, '<cmd', '|cmd', a newline) must leave no
// PWNED file behind, through plot_png, the trainer's plot_loss, the arena's report and the
// `tensorzoo train` command.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/plot.h"
#include "train/arena.h"

namespace fs = std::filesystem;
using namespace tz;

namespace {
const std::vector<std::string> kHostileNames = {
    "x'; touch PWNED_QUOTE; echo '",            // closes a shell's or gnuplot's single quotes
    "x\"; system(\"touch PWNED_DQUOTE\"); \"",  // the same with double quotes
    "<touch PWNED_PIPE_IN;",                    // gnuplot runs a data file named '<cmd' in a shell
    "|touch PWNED_PIPE_OUT;",                   // ... and an output named '|cmd'
    "x`touch PWNED_BACKTICK`",                  // gnuplot's and the shell's command substitution
    "x\nsystem('touch PWNED_NEWLINE')\n",       // ends a line of a gnuplot script
    "x $(touch PWNED_DOLLAR) y",                // the shell's command substitution, with spaces
};

// A fresh scratch directory that the test makes the working directory (a pasted command
// runs there), restored on exit.
struct Scratch {
  fs::path dir, old;
  explicit Scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("tz_test_plot_" + std::to_string(::getpid())) / name),
        old(fs::current_path()) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::current_path(dir);
  }
  ~Scratch() {
    fs::current_path(old);
    fs::remove_all(dir.parent_path());
  }
  // Every file a pasted command could have made, anywhere below the scratch directory.
  std::vector<std::string> pwned() const {
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().filename().string().rfind("PWNED", 0) == 0) found.push_back(e.path().string());
    return found;
  }
};

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

bool is_png(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.good() && std::string(magic + 1, 3) == "PNG";
}

void write_log(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "log.csv") << "step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n"
                                 << "1,5.5,,0.001,1,100,0.1\n2,4.5,4.4,0.001,1,100,0.2\n3,4.0,,0.001,1,100,0.3\n";
}
}  // namespace

TEST_CASE("plot: hostile file names, titles and labels reach gnuplot as data, never as commands") {
  Scratch s("names");
  const bool gnuplot = have_gnuplot();
  for (const std::string& name : kHostileNames) {
    CAPTURE(name);
    write_log(name);  // relative to the scratch directory, as a user would give it
    std::string message;
    const bool plotted = cli::plot_png({.csv = name + "/log.csv",
                                        .png = name + "/out.png",
                                        .title = name,
                                        .xlabel = name,
                                        .ylabel = name,
                                        .curves = {{.column = 2, .title = name}, {.column = 3, .sparse = true}}},
                                       message);
    CHECK(s.pwned().empty());
    if (gnuplot) {
      CHECK_MESSAGE(plotted, message);
      CHECK(message == name + "/out.png");
      CHECK(is_png(s.dir / name / "out.png"));
    }
  }
}

TEST_CASE("plot: the trainer's loss.png and the arena's curves.png in a directory named to inject") {
  Scratch s("callers");
  const bool gnuplot = have_gnuplot();
  for (const std::string& name : kHostileNames) {
    CAPTURE(name);
    write_log(name);
    std::string message;
    const bool plotted = cli::plot_loss(name, message);
    CHECK(s.pwned().empty());
    if (gnuplot) {
      CHECK_MESSAGE(plotted, message);
      CHECK(is_png(s.dir / name / "loss.png"));
    }

    arena::Options o;
    o.out_dir = name + "/arena";
    o.task = "copy";
    arena::Result r{
        .name = "x'; touch PWNED_MODEL; echo '", .params = 10, .train_loss = 1.5, .curve = {{1, 2.0}, {2, 1.5}}};
    std::string plot_message;
    arena::report(o, {r});
    cli::plot_arena(o, 1, plot_message);
    CHECK(s.pwned().empty());
    if (gnuplot) {
      CHECK(plot_message == o.out_dir + "/curves.png");
      CHECK(is_png(s.dir / name / "arena" / "curves.png"));
    }
  }
}

TEST_CASE("plot: `tensorzoo train --out` with a directory named to break out of a shell runs no command") {
  Scratch s("cli");
  const std::string out = "x'; touch PWNED; echo '";
  const std::string cli = std::string(TZ_BINARY_DIR) + "/tensorzoo";
  // The tool in a new process, in the scratch directory, with no shell in between.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const char* argv[] = {
        cli.c_str(), "train", "--steps",   "1",         "--dim",   "16", "--depth",         "1",     "--heads",  "2",
        "--context", "16",    "--seq-len", "16",        "--batch", "2",  "--builtin-bytes", "20000", "--sample", "0",
        "--threads", "1",     "--out",     out.c_str(), nullptr};
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::execv(cli.c_str(), const_cast<char* const*>(argv));
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(s.pwned().empty());
  CHECK(fs::exists(s.dir / out / "checkpoint.safetensors"));
  if (have_gnuplot()) CHECK(is_png(s.dir / out / "loss.png"));
}

TEST_CASE("plot: a missing gnuplot or a bad data file is a message, not an exception") {
  Scratch s("failures");
  write_log("run");
  std::string message;
  if (have_gnuplot()) {
    CHECK_FALSE(cli::plot_png({.csv = "run/none.csv", .png = "run/out.png", .curves = {{.column = 2}}}, message));
    CHECK(message.find("gnuplot failed on run/out.png: ") == 0);
    CHECK(message.find("none.csv") != std::string::npos);  // gnuplot's own complaint
  }
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", s.dir.c_str(), 1);  // no gnuplot here
  const bool plotted = cli::plot_png({.csv = "run/log.csv", .png = "run/out.png", .curves = {{.column = 2}}}, message);
  ::setenv("PATH", path.c_str(), 1);
  CHECK_FALSE(plotted);
  CHECK(message == "gnuplot not found: install it (apt-get install gnuplot-nox) for run/out.png");
  CHECK_THROWS_WITH_AS(cli::plot_png({.csv = "run/log.csv", .png = "run/out.png"}, message),
                       doctest::Contains("no curves"), Error);
}
