// PNG line plots through gnuplot, without a shell (see plot.h).
#include "cli/plot.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "train/run_dir.h"

extern char** environ;

namespace tz::cli {

namespace {

std::string number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

// Writes all of `text` to `fd` with SIGPIPE blocked, so that a gnuplot which exits before
// reading its script makes write() fail with EPIPE instead of killing this process.
void write_all(int fd, const std::string& text) {
  sigset_t pipe_signal, old;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old);
  bool broken = false;
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      broken = errno == EPIPE;
      break;
    }
    done += size_t(n);
  }
  if (broken) {  // take the pending SIGPIPE before unblocking it
    timespec zero{};
    sigtimedwait(&pipe_signal, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

// Runs `gnuplot -c /dev/stdin args...` with `script` on its standard input. Returns its exit
// status, or -errno when it could not be started; fills `output` with what it printed.
int run_gnuplot(const std::string& script, const std::vector<std::string>& args, std::string& output) {
  int in[2], out[2];
  TZ_CHECK(::pipe2(in, O_CLOEXEC) == 0, "plot: pipe failed: ", std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    throw Error(cat_str("plot: pipe failed: ", std::strerror(errno)));
  }
  std::vector<std::string> argv_strings = {"gnuplot", "-c", "/dev/stdin"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  if (spawned != 0) {
    ::close(in[1]);
    ::close(out[0]);
    return -spawned;
  }
  write_all(in[1], script);  // small (well under a pipe's buffer): written before reading
  ::close(in[1]);
  output = read_all(out[0]);
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

bool plot_png(const PlotSpec& spec, std::string& message) {
  namespace fs = std::filesystem;
  TZ_CHECK(!spec.curves.empty(), "plot: no curves to draw from ", spec.csv);
  // Absolute paths: gnuplot runs '<cmd' data files and '|cmd' outputs through a shell.
  const std::string png = fs::absolute(spec.png).string(), csv = fs::absolute(spec.csv).string();
  std::vector<std::string> args = {png, csv, spec.xlabel, spec.ylabel, spec.title};
  std::string script =
      "set terminal pngcairo size 900,540 font ',11' noenhanced\n"
      "set output ARG1\n"
      "set datafile separator ','\n"
      "set key top right\n"
      "set grid\n";
  if (spec.log_y) script += "set logscale y\n";
  script += "set xlabel ARG3\nset ylabel ARG4\nset title ARG5\nplot ";
  for (size_t i = 0; i < spec.curves.size(); ++i) {
    const Curve& c = spec.curves[i];
    TZ_CHECK(c.column >= 2, "plot: curve ", i, " reads column ", c.column, "; columns 2, 3, ... hold the curves");
    const std::string k = std::to_string(c.column);
    std::string title = "columnhead(" + k + ")";  // reads the header row itself
    std::string skip;
    if (!c.title.empty()) {
      args.push_back(c.title);
      TZ_CHECK(args.size() <= 9,
               "plot: at most 4 curves with their own titles (gnuplot -c takes 9 arguments); "
               "leave the others' titles empty to use the column headers");
      title = "ARG" + std::to_string(args.size());
      skip = " skip 1";  // the header row is not data
    }
    script += i ? ", " : "";
    script += c.sparse ? "ARG2 using 1:($" + k + " == $" + k + " ? $" + k + " : 1/0)" + skip + " with linespoints lw " +
                             number(c.width) + " pt 7"
                       : "ARG2 using 1:" + k + skip + " with lines lw " + number(c.width);
    script += " title " + title;
  }
  script += "\n";
  std::string output;
  const int status = run_gnuplot(script, args, output);
  if (status < 0) {
    message = status == -ENOENT ? "gnuplot not found: install it (apt-get install gnuplot-nox) for " + spec.png
                                : cat_str("cannot start gnuplot (", std::strerror(-status), ") for ", spec.png);
    return false;
  }
  if (status != 0) {
    while (!output.empty() && (output.front() == '\n' || output.front() == ' ')) output.erase(0, 1);
    message = "gnuplot failed on " + spec.png + ": " + output.substr(0, output.find('\n'));
    return false;
  }
  message = spec.png;
  return true;
}

bool plot_loss(const std::string& dir, std::string& message) {
  namespace fs = std::filesystem;
  return plot_png({.csv = (fs::path(dir) / train::kLogFile).string(),
                   .png = (fs::path(dir) / "loss.png").string(),
                   .title = "training run " + dir,
                   .ylabel = "loss (nats per byte)",
                   .curves = {{.column = 2, .title = "train", .width = 1.5},
                              {.column = 3, .title = "validation", .width = 2, .sparse = true}}},
                  message);
}

bool plot_arena(const arena::Options& o, size_t models, std::string& message) {
  namespace fs = std::filesystem;
  if (models == 0) {
    message = "no results to plot";
    return false;
  }
  PlotSpec plot{.csv = (fs::path(o.out_dir) / "curves.csv").string(),
                .png = (fs::path(o.out_dir) / "curves.png").string(),
                .title = cat_str("arena: task ", o.task, ", ", o.steps, " steps, batch ", o.batch, " x ", o.seq_len),
                .ylabel = "training loss",
                .log_y = true};
  for (size_t i = 0; i < models; ++i) plot.curves.push_back({.column = int(i) + 2});  // titled by the header
  return plot_png(plot, message);
}

}  // namespace tz::cli
