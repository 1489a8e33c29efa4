// `mpirun -np N tensorzoo train` (train/distributed.h) against one process, in separate
// processes: the same losses as one process with the whole batch (fast: to f32 rounding;
// deterministic: bit for bit on 1, 2 and 4 ranks), replicas identical after every step, a
// rank killed mid-run named by the job and the last checkpoint resumed exactly on other rank
// counts; the arena's variants on separate ranks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

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
    " --dim 32 --depth 1 --heads 2 --context 32 --seq-len 32 --batch 8 --builtin-bytes 60000"
    " --eval-every 5 --log-every 1 --warmup 2 --sample 0 --threads 1";

std::string mpirun(int ranks) {
  return cat_str(TZ_MPIEXEC, " ", ranks, " ", TZ_MPIEXEC_FLAGS, " ", TZ_BINARY_DIR, "/tensorzoo");
}

// `mpirun -np ranks tensorzoo <args>`, its output captured.
CliRun run_mpi(int ranks, const std::string& args) {
  static int calls = 0;
  const fs::path dir = testing::cli_scratch();
  const std::string tag = "mpi_" + std::to_string(calls++);
  const std::string out = (dir / (tag + ".out")).string(), err = (dir / (tag + ".err")).string();
  const int rc = std::system(("timeout 120 " + mpirun(ranks) + " " + args + " > " + out + " 2> " + err).c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out), read_file(err)};
}

// (step, loss, val_loss) of each row of a run's log.csv, as written (9 significant digits).
std::vector<std::string> rows(const std::string& dir) {
  std::vector<std::string> out;
  std::istringstream in(read_file(dir + "/log.csv"));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) out.push_back(line.substr(0, line.find(',', line.find(',', line.find(',') + 1) + 1)));
  return out;
}
double loss_at(const std::string& row) { return std::stod(row.substr(row.find(',') + 1)); }

// The model and optimizer tensors of a run's checkpoint, bit for bit.
bool same_tensors(const std::string& a, const std::string& b) {
  TensorFile fa = load_safetensors(a + "/checkpoint.safetensors"), fb = load_safetensors(b + "/checkpoint.safetensors");
  if (fa.tensors.size() != fb.tensors.size()) return false;
  for (auto& [name, t] : fa.tensors) {
    auto it = fb.tensors.find(name);
    if (it == fb.tensors.end() || it->second.shape() != t.shape() || testing::max_abs_diff(t, it->second) != 0)
      return false;
  }
  return fa.metadata.at("shard_rng") == fb.metadata.at("shard_rng");
}
}  // namespace

TEST_CASE(
    "mpirun -np 2 trains as one process with the whole batch, and deterministic runs agree bit for bit on 1, 2 and 4 "
    "ranks") {
  const std::string args = kTiny + " --steps 20 --verify-replicas";
  // Fast mode: 2 ranks x 4 rows against 1 process x 8 rows, every step and validation.
  std::string one = fresh_dir("one"), two = fresh_dir("two");
  CliRun a = run_cli("train" + args + " --out " + one);
  REQUIRE_MESSAGE(a.status == 0, a.err);
  CliRun b = run_mpi(2, "train" + args + " --out " + two);
  REQUIRE_MESSAGE(b.status == 0, b.err);
  CHECK(b.out.find("data parallel: 2 ranks") != std::string::npos);
  std::vector<std::string> ra = rows(one), rb = rows(two);
  REQUIRE(ra.size() == 20);
  REQUIRE(rb.size() == 20);
  double worst = 0;
  for (size_t i = 0; i < ra.size(); ++i)
    worst = std::max(worst, std::abs(loss_at(rb[i]) - loss_at(ra[i])) / loss_at(ra[i]));
  MESSAGE("2 ranks against 1 process, 20 steps: largest relative loss difference ", worst);
  CHECK(worst < 2e-6);
  CHECK(loss_at(ra.back()) < loss_at(ra.front()) - 0.5);  // it trained
  // Deterministic: 4 shards summed in shard order, on 1, 2 and 4 ranks: the same bits.
  const std::string det = args + " --shards 4 --deterministic";
  std::string d1 = fresh_dir("d1"), d2 = fresh_dir("d2"), d4 = fresh_dir("d4");
  REQUIRE(run_cli("train" + det + " --out " + d1).status == 0);
  CliRun c2 = run_mpi(2, "train" + det + " --out " + d2);
  REQUIRE_MESSAGE(c2.status == 0, c2.err);
  CliRun c4 = run_mpi(4, "train" + det + " --out " + d4);
  REQUIRE_MESSAGE(c4.status == 0, c4.err);
  CHECK(rows(d2) == rows(d1));
  CHECK(rows(d4) == rows(d1));
  CHECK(same_tensors(d1, d2));
  CHECK(same_tensors(d1, d4));
  // mpirun -np 1 is the process alone (one shard: the single-process path), bit for bit.
  std::string n1 = fresh_dir("n1");
  REQUIRE(run_mpi(1, "train" + args + " --out " + n1).status == 0);
  CHECK(rows(n1) == ra);
}

TEST_CASE("a rank killed mid-run is named by mpirun, and the last checkpoint resumes exactly on 1, 2 and 4 ranks") {
  const std::string args = kTiny + " --steps 5000 --shards 4 --deterministic";
  const std::string run = fresh_dir("killed");
  const fs::path scratch = testing::cli_scratch();
  const std::string out = (scratch / "killed.out").string(), err = (scratch / "killed.err").string();
  const pid_t job = fork();
  REQUIRE(job >= 0);
  if (job == 0) {
    const std::string cmd = "exec " + mpirun(2) + " train" + args + " --out " + run + " > " + out + " 2> " + err;
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until step 12 is logged (checkpoints at 5 and 10 written), then kill rank 1.
  const auto t0 = std::chrono::steady_clock::now();
  while (rows(run).size() < 12 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(rows(run).size() >= 12);
  pid_t rank1 = -1;  // mpirun's child whose environment says rank 1
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string stat = read_file(e.path().string() + "/stat");
    if (stat.empty()) continue;
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    char state;
    pid_t ppid = 0;
    in >> state >> ppid;
    const std::string env = read_file(e.path().string() + "/environ");
    if (ppid == job && env.find(std::string("OMPI_COMM_WORLD_RANK=1") + '\0') != std::string::npos)
      rank1 = std::stoi(e.path().filename().string());
  }
  REQUIRE(rank1 > 0);
  kill(rank1, SIGKILL);
  int status = 0;
  waitpid(job, &status, 0);
  const std::string said = read_file(err);
  INFO(cat_str("mpirun's stderr: ", said));
  CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(said.find("rank 1") != std::string::npos);
  CHECK(said.find("signal 9") != std::string::npos);
  // The checkpoint is whole and holds a step of the run's schedule.
  train::RunCheckpoint ck = train::read_run(run);
  CHECK(ck.step >= 10);
  CHECK(ck.step % 5 == 0);
  const int64_t target = ck.step + 6;
  // An unbroken run to the same step (one process), and resumes on 1, 2 and 4 ranks.
  std::string whole = fresh_dir("whole");
  REQUIRE(run_cli("train" + args + cat_str(" --stop-after ", target, " --out ", whole)).status == 0);
  const std::vector<std::string> expect = rows(whole);
  for (int ranks : {1, 2, 4}) {
    const std::string copy = fresh_dir(cat_str("resumed", ranks));
    fs::copy(run, copy);
    CliRun r = run_mpi(ranks, cat_str("train --resume ", copy, " --sample 0 --stop-after ", target - ck.step));
    INFO(cat_str("resumed on ", ranks, " ranks: ", r.err));
    REQUIRE(r.status == 0);
    CHECK(rows(copy) == expect);
  }
  // A rank count that does not divide the shards is refused with the counts that do.
  CliRun three = run_mpi(3, "train --resume " + run + " --sample 0");
  CHECK(three.status != 0);
  CHECK(three.err.find("3 ranks cannot share the run's 4 shards") != std::string::npos);
  CHECK(three.err.find("1, 2, 4") != std::string::npos);
}

TEST_CASE("arena: each rank trains its own variants, and the table is the one process's") {
  const std::string args =
      " --models gpt,rmsnorm,sinusoidal_pe --task copy --steps 6 --batch 4 --seq-len 16"
      " --threads 1 --base '{\"dim\": 16, \"depth\": 1, \"heads\": 2}'";
  std::string one = fresh_dir("arena1"), two = fresh_dir("arena2");
  CliRun a = run_cli("arena" + args + " --out " + one);
  REQUIRE_MESSAGE(a.status == 0, a.err);
  CliRun b = run_mpi(2, "arena" + args + " --out " + two);
  REQUIRE_MESSAGE(b.status == 0, b.err);
  CHECK(b.out.find("on 2 ranks") != std::string::npos);
  // Losses and accuracies (not the timing columns) agree to the last digit.
  auto numbers = [](const std::string& dir) {
    std::istringstream in(read_file(dir + "/results.csv"));
    std::string line, out;
    while (std::getline(in, line)) {
      size_t cut = line.size();
      for (int i = 0; i < 3; ++i) cut = line.rfind(',', cut - 1);  // drop tokens_per_s, peak_mb, wall_s
      out += line.substr(0, cut) + "\n";
    }
    return out;
  };
  CHECK(numbers(two) == numbers(one));
  CHECK(numbers(one).find("rmsnorm") != std::string::npos);
}
