// Data-parallel training: N ranks (processes, on one machine or several; core/communicator.h)
// each hold the whole model and share every step's batch.
//
// The batch of B rows is cut into K shards of B / K rows (K divides B; K is a property of the
// run, saved with it). Rank r of N (N divides K) computes the shards [r K/N, (r+1) K/N): for
// each, the mean loss over its rows and its gradient g_k. The step's gradient is the mean over
// the shards, G = (g_0 + ... + g_{K-1}) / K, given to every rank, so that N ranks take the
// step one process takes on the whole batch (mean of equal-size shard means = mean over the
// rows), and every rank makes the same update. Two ways to sum:
//   fast (the default)  a rank adds its shards' gradients locally, then MPI_Allreduce sums
//                       the ranks' in the order the MPI library chooses: equal to one process
//                       to f32 rounding (the order of a float sum changes its last bits)
//   deterministic       a fixed order whatever N: each rank owns a 1/N slice of every bucket,
//                       receives that slice of all K shard gradients (alltoall), adds them in
//                       shard order 0 .. K-1 and gives the slice back (allgather). Bit for bit
//                       the same G on 1, 2, ... K ranks; each rank sends m = K/N copies of its
//                       share (m = 1: the same bytes as the ring allreduce), and with m > 1
//                       keeps m gradient copies
// The gradients travel in buckets of about bucket_mb (the parameters in reverse order: the
// last layers' gradients are final first). During the last local shard's backward a bucket
// is handed to a second thread as soon as its last gradient is final (autograd's
// LeafGradHook), so the reduction of the late layers overlaps the backward of the early ones
// (PyTorch DDP's design, arXiv:2006.15704). Without MPI_THREAD_MULTIPLE, or with overlap off,
// the buckets are reduced after backward.
//
// A parameter that receives no gradient on any rank keeps none (the optimizer skips it, as in
// one process); each bucket carries one flag per parameter for that.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/communicator.h"
#include "core/tensor.h"

namespace tz::train {

struct ParallelOptions {
  int64_t shards = 1;          // K: the batch's shards (a multiple of the ranks)
  bool deterministic = false;  // sum the shards in a fixed order (bit-identical on any N dividing K)
  double bucket_mb = 4;        // gradients per reduction call
  bool overlap = true;         // reduce buckets during the backward pass (when the communicator allows)
  bool patient = true;         // the reduction thread sleeps between progress checks instead of spinning
};

// Accumulated over the steps since construction (reset_stats()).
struct ParallelStats {
  int64_t steps = 0;
  double grad_bytes = 0;      // gradient bytes each rank put into reductions (buckets with flags)
  double compute_s = 0;       // forward + backward of this rank's shards, packing included
  double reduce_s = 0;        // inside the reduction calls (on whichever thread)
  double wait_s = 0;          // after backward, waiting for the last buckets (the exposed communication)
  double loss_s = 0;          // gathering the shards' losses
  int64_t buckets = 0;        // buckets reduced
  int64_t early_buckets = 0;  // of them, handed over before backward returned (overlap possible)
};

class DataParallel {
 public:
  // `params` in model order (every rank the same names, shapes and dtypes: checked).
  DataParallel(const std::vector<std::pair<std::string, Tensor>>& params, std::shared_ptr<Communicator> comm,
               const ParallelOptions& options);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int64_t first_shard() const { return first_; }
  int64_t local_shards() const { return local_; }
  Communicator& comm() const { return *comm_; }
  const ParallelOptions& options() const { return options_; }
  bool overlaps() const { return thread_.joinable(); }  // a reduction thread runs during backward
  int64_t num_buckets() const;

  // One step's loss and gradients. shard_loss(k) is shard k's mean loss (requiring grad), called
  // for this rank's shards in order. Afterwards every parameter's .grad holds G (see the top),
  // identical on every rank; returns the mean of the K shard losses (summed in shard order).
  double loss_and_grads(const std::function<Tensor(int64_t shard)>& shard_loss);

  // Rank root's tensors copied into every rank's (same shapes; contiguous).
  void broadcast(const std::vector<Tensor>& tensors, int root = 0);
  // Throws tz::Error naming the first rank whose tensors differ from rank 0's, bit for bit.
  void check_replicas(const std::vector<Tensor>& tensors, const std::string& when);
  // True on every rank when `mine` is true on any rank (an agreed stop).
  bool any(bool mine);

  const ParallelStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  struct Bucket;
  void passes(const std::function<Tensor(int64_t shard)>& shard_loss, std::vector<double>& losses);
  void pack(size_t param, int64_t shard_slot);
  void submit(size_t bucket);
  void reduce(Bucket& b);
  void comm_loop();
  void wait_all();

  std::vector<Tensor> params_;
  std::shared_ptr<Communicator> comm_;
  ParallelOptions options_;
  int64_t first_ = 0, local_ = 1;
  std::vector<Bucket> buckets_;
  struct Place {
    size_t bucket;
    int64_t offset, flag;  // elements into the bucket: the gradient's first, its flag
  };
  std::vector<Place> where_;  // by parameter
  std::vector<bool> packed_;  // this step: param's gradient packed
  ParallelStats stats_;
  // The reduction thread: reduces buckets in index order as they are submitted.
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  size_t submitted_ = 0, reduced_ = 0;  // buckets handed over / done this step (in index order)
  std::vector<bool> ready_;
  bool stop_ = false;
  std::string thread_error_;
};

// Checks that `ranks` ranks can share a run of `shards` shards over a batch of `batch` rows;
// the error says which rank counts can.
void check_shards(int64_t batch, int64_t shards, int ranks);

}  // namespace tz::train
