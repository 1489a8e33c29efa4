// distributed_step: the GPT training step of bench/gpt_step.cpp, data-parallel over the ranks
// mpirun starts (train/distributed.h), printed by rank 0 as one JSON object; its peer is the
// same program on one rank (bench/run_distributed_bench.sh runs both and prints the ratios).
//
//   mpirun -np N distributed_step --config small|large --threads T [--batch B] [--reps R]
//          [--warmup W] [--deterministic] [--no-overlap] [--spin] [--bucket-mb X]
//
// The model and data are gpt_step's (small: C 256, L 4, H 4, T 256, B 8; large: C 512, L 6,
// H 8, T 512, B 4); B is the global batch: each of N ranks computes B / N rows. One rank runs
// the plain step (zero_grad, loss, backward, AdamW); N ranks run loss_and_grads (forward and
// backward of their rows, gradients averaged in buckets) and the same AdamW update. Per step
// (medians over the reps):
//   step_ms     the whole step
//   compute_ms  forward + backward (with packing the gradients into buckets)
//   reduce_ms   inside the reduction calls (MPI_Allreduce), on the reduction thread when it
//               overlaps the backward pass
//   wait_ms     after backward, waiting for the last buckets: the exposed communication
//   opt_ms      the AdamW update
// and the gradient bytes each rank reduces per step. --spin: the reduction thread waits inside
// blocking MPI calls (which spin) instead of sleeping between progress checks. The probe times MPI_Allreduce alone on
// one buffer of those bytes and on 8 bytes (latency), for the transport in use.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "bench/bench_util.h"
#include "core/creation.h"
#include "core/mpi_comm.h"
#include "core/parallel.h"
#include "core/random.h"
#include "models/gpt.h"
#include "optim/adam.h"
#include "train/distributed.h"

using namespace tz;
using bench::median;
using bench::seconds_since;

namespace {
struct Args {
  std::string config = "small";
  int threads = 1, reps = 8, warmup = 2;
  int64_t batch = 0;
  bool deterministic = false, overlap = true, patient = true;
  double bucket_mb = 4;
};

Args parse(int argc, char** argv) {
  Args a;
  bench::Flags flags("distributed_step",
                     "--config small|large --threads T [--batch B] [--reps R] [--warmup W] [--deterministic] "
                     "[--no-overlap] [--spin] [--bucket-mb X]   (under mpirun -np N)");
  flags.word("--config", a.config, {"small", "large"})
      .whole("--threads", a.threads, 1)
      .whole("--batch", a.batch, 1)
      .whole("--reps", a.reps, 1)
      .whole("--warmup", a.warmup, 0)
      .toggle("--deterministic", a.deterministic)
      .toggle("--no-overlap", a.overlap, false)
      .toggle("--spin", a.patient, false)
      .real("--bucket-mb", a.bucket_mb, 0.0);
  flags.parse(argc, argv);
  return a;
}

// Median time of MPI_Allreduce on n floats (the gradient of one step in one buffer).
double allreduce_ms(Communicator& comm, int64_t n, int reps) {
  std::vector<float> buf(size_t(n), 1.0f);
  std::vector<double> t;
  for (int i = 0; i < reps + 2; ++i) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    comm.allreduce_sum(buf.data(), n);
    if (i >= 2) t.push_back(seconds_since(t0) * 1e3);
  }
  return median(t);
}
}  // namespace

int main(int argc, char** argv) {
  std::optional<mpi::Session> session;
  std::shared_ptr<Communicator> comm = std::make_shared<SoloCommunicator>();
  if (mpi::launched()) {
    session.emplace(&argc, &argv);
    comm = session->world();
  }
  const Args a = parse(argc, argv);
  set_num_threads(a.threads);
  const int N = comm->size();

  models::GPTConfig c;
  int64_t T = 256, B = 8;
  if (a.config == "large")
    c.dim = 512, c.depth = 6, c.heads = 8, T = 512, B = 4;
  else
    c.dim = 256, c.depth = 4, c.heads = 4;
  if (a.batch > 0) B = a.batch;
  if (B % N != 0) {
    std::fprintf(stderr, "distributed_step: the batch (%lld) must be a multiple of the ranks (%d)\n", (long long)B, N);
    return 2;
  }
  c.vocab = 256, c.mlp_mult = 4, c.activation = "gelu", c.norm = "layernorm";
  c.bias = true, c.dropout = 0.0, c.tie_weights = true, c.context = T;
  Generator init_gen(1234);
  models::GPT model(c, init_gen);
  model.train();
  Generator data_gen(42);
  Tensor seq = randint(0, c.vocab, {B, T + 1}, data_gen);
  Tensor ids = seq.narrow(1, 0, T).contiguous(), targets = seq.narrow(1, 1, T).contiguous();
  const int64_t rows = B / N;

  optim::AdamW opt(optim::decay_groups(model.named_parameters(), 0.1), optim::AdamWOptions{.lr = 3e-4});
  std::unique_ptr<train::DataParallel> dp;
  if (N > 1)
    dp = std::make_unique<train::DataParallel>(model.named_parameters(), comm,
                                               train::ParallelOptions{.shards = N,
                                                                      .deterministic = a.deterministic,
                                                                      .bucket_mb = a.bucket_mb,
                                                                      .overlap = a.overlap,
                                                                      .patient = a.patient});
  std::vector<double> step, compute, reduce, wait, optimize;
  double first_loss = 0, grad_bytes = 0;
  for (int i = 0; i < a.warmup + a.reps; ++i) {
    comm->barrier();
    const auto t0 = std::chrono::steady_clock::now();
    double loss = 0, c_s = 0, r_s = 0, w_s = 0;
    if (dp) {
      const train::ParallelStats before = dp->stats();
      loss = dp->loss_and_grads(
          [&](int64_t k) { return model.loss(ids.narrow(0, k * rows, rows), targets.narrow(0, k * rows, rows)); });
      const train::ParallelStats& s = dp->stats();
      c_s = s.compute_s - before.compute_s, r_s = s.reduce_s - before.reduce_s, w_s = s.wait_s - before.wait_s;
      grad_bytes = s.grad_bytes / double(s.steps);
    } else {
      opt.zero_grad();
      Tensor l = model.loss(ids, targets);
      l.backward();
      loss = l.item();
      c_s = seconds_since(t0);
    }
    const auto t1 = std::chrono::steady_clock::now();
    opt.step();
    const double o_s = seconds_since(t1), total = seconds_since(t0);
    if (i == 0) first_loss = loss;
    if (i >= a.warmup) {
      step.push_back(total * 1e3), compute.push_back(c_s * 1e3), reduce.push_back(r_s * 1e3);
      wait.push_back(w_s * 1e3), optimize.push_back(o_s * 1e3);
    }
  }
  int64_t params = model.num_parameters();
  if (!dp) grad_bytes = double(params) * 4;
  const double probe = N > 1 ? allreduce_ms(*comm, params, a.reps) : 0;
  const double latency = N > 1 ? allreduce_ms(*comm, 2, 20 * a.reps) : 0;
  const char* btl = std::getenv("OMPI_MCA_btl");
  if (comm->rank() == 0)
    std::printf(
        "{\"config\":\"%s\",\"ranks\":%d,\"threads\":%d,\"batch\":%lld,\"params\":%lld,\"deterministic\":%s,"
        "\"overlap\":%s,\"patient\":%s,\"bucket_mb\":%g,\"buckets\":%lld,\"btl\":\"%s\",\"grad_bytes\":%.0f,\"step_"
        "ms\":%.3f,"
        "\"compute_ms\":%.3f,\"reduce_ms\":%.3f,\"wait_ms\":%.3f,\"opt_ms\":%.3f,\"tokens_per_s\":%.1f,"
        "\"allreduce_ms\":%.3f,\"latency_us\":%.2f,\"first_loss\":%.6f}\n",
        a.config.c_str(), N, a.threads, (long long)B, (long long)params, a.deterministic ? "true" : "false",
        dp && dp->overlaps() ? "true" : "false", a.patient ? "true" : "false", a.bucket_mb,
        (long long)(dp ? dp->num_buckets() : 0), btl ? btl : "default", grad_bytes, median(step), median(compute),
        median(reduce), median(wait), median(optimize), double(B * T) / (median(step) / 1e3), probe, latency * 1e3,
        first_loss);
  return 0;
}
