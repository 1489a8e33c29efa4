// Communicator: a group of processes, ranks 0 .. size-1, that exchange buffers. The
// data-parallel trainer (train/distributed.h), the arena's ranks and sequence-parallel Ring
// attention (nn/sparse_attention/ring_attention.h) speak only to this interface; MPI
// implements it (core/mpi_comm.h, built with TZ_USE_MPI), and a single process is the group
// of one (SoloCommunicator), so the same code runs, and is tested, without MPI.
//
// Every call is collective (each rank of the group makes it, in the same order) except
// sendrecv, which pairs two ranks. Sums give every rank the same bits (MPI's reductions do,
// for a fixed group and message size; the deterministic trainer fixes the order itself).
// A failure throws tz::Error naming the call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace tz {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "MPI (Open MPI v4.1.4)", "single process": for logs.
  virtual std::string describe() const = 0;
  // Whether two threads of a rank may call at once (MPI_THREAD_MULTIPLE): the trainer then
  // reduces gradients on its own thread while the backward pass runs.
  virtual bool concurrent_calls() const = 0;

  // x <- sum over the ranks of x (n elements).
  virtual void allreduce_sum(float* x, int64_t n) = 0;
  virtual void allreduce_sum(double* x, int64_t n) = 0;
  // Rank root's bytes to every rank.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // recv [size][bytes]: block p is rank p's `send` (bytes each).
  virtual void allgather(const void* send, int64_t bytes, void* recv) = 0;
  // send [size][bytes]: block q goes to rank q; recv [size][bytes]: block p came from rank p.
  virtual void alltoall(const void* send, int64_t bytes, void* recv) = 0;
  // Sends send_bytes to rank `to` while receiving recv_bytes from rank `from` (a ring step).
  virtual void sendrecv(const void* send, int64_t send_bytes, int to, void* recv, int64_t recv_bytes, int from) = 0;
  virtual void barrier() = 0;
  // Calls from the calling thread wait for their peers by sleeping between progress checks
  // instead of spinning (MPI spins): for a helper thread that reduces while the computation
  // runs on every core, where spinning would take cycles from it.
  virtual void set_patient_waits(bool on) {}
  // Ends every process of the group at once (MPI_Abort), after a failure that leaves a
  // collective half done, where the others would wait forever.
  [[noreturn]] virtual void abort(int code) = 0;
};

// The group of one process: every collective is a copy.
class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  bool concurrent_calls() const override { return true; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int root) override;
  void allgather(const void* send, int64_t bytes, void* recv) override;
  void alltoall(const void* send, int64_t bytes, void* recv) override;
  void sendrecv(const void* send, int64_t send_bytes, int to, void* recv, int64_t recv_bytes, int from) override;
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

// Every rank's string, in rank order (sizes first, then the padded bytes).
std::vector<std::string> allgather_strings(Communicator& comm, const std::string& mine);
// Rank root's string on every rank.
std::string broadcast_string(Communicator& comm, const std::string& s, int root = 0);

// An error every rank of a group raised alike (so one rank says it, and no rank waits).
class AgreedError : public Error {
 public:
  using Error::Error;
};

// Runs `fn` on rank 0 only and gives its failure to every rank: each throws AgreedError with
// rank 0's message (so a bad directory stops every rank with one clear line, not a hang).
// A group of one just calls fn.
void on_rank0(Communicator& comm, const std::function<void()>& fn);

}  // namespace tz
