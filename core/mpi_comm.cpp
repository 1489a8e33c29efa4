// MPI as a tz::Communicator: see mpi_comm.h.
#include "core/mpi_comm.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>

#include "core/error.h"

namespace tz::mpi {

namespace {

// MPI counts are int: larger buffers go in pieces of at most 2^30 elements.
constexpr int64_t kPiece = int64_t(1) << 30;
// A patient wait's sleep between progress checks.
constexpr int kPatientSleepUs = 20;

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw Error(cat_str(call, " failed: ", std::string(text, size_t(len))));
}

class World final : public Communicator {
 public:
  explicit World(int thread_level) : thread_level_(thread_level) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // Errors come back as codes (thrown as tz::Error) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, size_t(len));
    version_ = v.substr(0, v.find_first_of(",\n"));
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return cat_str("MPI (", version_, ")"); }
  bool concurrent_calls() const override { return thread_level_ >= MPI_THREAD_MULTIPLE; }

  void allreduce_sum(float* x, int64_t n) override { reduce(x, n, MPI_FLOAT); }
  void allreduce_sum(double* x, int64_t n) override { reduce(x, n, MPI_DOUBLE); }

  void broadcast(void* data, int64_t bytes, int root) override {
    for (int64_t at = 0; at < bytes; at += kPiece)
      check(MPI_Bcast(static_cast<char*>(data) + at, int(std::min(kPiece, bytes - at)), MPI_BYTE, root, MPI_COMM_WORLD),
            "MPI_Bcast");
  }
  void allgather(const void* send, int64_t bytes, void* recv) override {
    TZ_CHECK(bytes <= INT_MAX, "MPI_Allgather: ", bytes, " bytes per rank is more than one call carries");
    if (!patient) {
      check(MPI_Allgather(send, int(bytes), MPI_BYTE, recv, int(bytes), MPI_BYTE, MPI_COMM_WORLD), "MPI_Allgather");
      return;
    }
    MPI_Request request;
    check(MPI_Iallgather(send, int(bytes), MPI_BYTE, recv, int(bytes), MPI_BYTE, MPI_COMM_WORLD, &request),
          "MPI_Iallgather");
    wait_patiently(request);
  }
  void alltoall(const void* send, int64_t bytes, void* recv) override {
    TZ_CHECK(bytes <= INT_MAX, "MPI_Alltoall: ", bytes, " bytes per rank is more than one call carries");
    if (!patient) {
      check(MPI_Alltoall(send, int(bytes), MPI_BYTE, recv, int(bytes), MPI_BYTE, MPI_COMM_WORLD), "MPI_Alltoall");
      return;
    }
    MPI_Request request;
    check(MPI_Ialltoall(send, int(bytes), MPI_BYTE, recv, int(bytes), MPI_BYTE, MPI_COMM_WORLD, &request),
          "MPI_Ialltoall");
    wait_patiently(request);
  }
  void sendrecv(const void* send, int64_t send_bytes, int to, void* recv, int64_t recv_bytes, int from) override {
    // One piece of each per round: both sides agree on the rounds from the two sizes.
    const int64_t rounds = std::max((send_bytes + kPiece - 1) / kPiece, (recv_bytes + kPiece - 1) / kPiece);
    for (int64_t i = 0; i < rounds; ++i) {
      const int64_t s = std::clamp(send_bytes - i * kPiece, int64_t(0), kPiece);
      const int64_t r = std::clamp(recv_bytes - i * kPiece, int64_t(0), kPiece);
      check(MPI_Sendrecv(static_cast<const char*>(send) + i * kPiece * (s > 0), int(s), MPI_BYTE, to, 0,
                         static_cast<char*>(recv) + i * kPiece * (r > 0), int(r), MPI_BYTE, from, 0, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE),
            "MPI_Sendrecv");
    }
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

  void set_patient_waits(bool on) override { patient = on; }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  void reduce(void* x, int64_t n, MPI_Datatype type) {
    int bytes = 0;
    MPI_Type_size(type, &bytes);
    for (int64_t at = 0; at < n; at += kPiece) {
      void* piece = static_cast<char*>(x) + at * bytes;
      const int count = int(std::min(kPiece, n - at));
      if (!patient) {
        check(MPI_Allreduce(MPI_IN_PLACE, piece, count, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
        continue;
      }
      MPI_Request request;
      check(MPI_Iallreduce(MPI_IN_PLACE, piece, count, type, MPI_SUM, MPI_COMM_WORLD, &request), "MPI_Iallreduce");
      wait_patiently(request);
    }
  }
  // A non-blocking collective advances inside MPI_Test: test, then sleep a little, until done.
  static void wait_patiently(MPI_Request& request) {
    for (int done = 0;;) {
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) return;
      std::this_thread::sleep_for(std::chrono::microseconds(kPatientSleepUs));
    }
  }
  static thread_local bool patient;
  int rank_ = 0, size_ = 1, thread_level_ = MPI_THREAD_SINGLE;
  std::string version_;
};
thread_local bool World::patient = false;

}  // namespace

bool launched() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(var)) return true;
  return false;
}

Session::Session(int* argc, char*** argv) {
  int provided = MPI_THREAD_SINGLE;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
  world_ = std::make_shared<World>(provided);
}

Session::~Session() {
  world_.reset();
  MPI_Finalize();
}

void Session::abort(int code) const {
  world_->abort(code);
  std::_Exit(code);  // not reached
}

}  // namespace tz::mpi
