// MPI as a tz::Communicator (core/communicator.h): MPI_COMM_WORLD of the processes mpirun
// started. Built only with TZ_USE_MPI (the tensorzoo_mpi library); the rest of tensorzoo
// never includes <mpi.h>.
//
//   if (tz::mpi::launched()) session.emplace(argc, argv);  // MPI_Init_thread
//   std::shared_ptr<tz::Communicator> world = session->world();
//
// MPI is initialised only when the process was started by mpirun or mpiexec, so a plain
// `tensorzoo train` of an MPI build never touches MPI and runs as before.
#pragma once

#include <memory>

#include "core/communicator.h"

namespace tz::mpi {

// True when this process was started by mpirun or mpiexec (Open MPI, MPICH or a PMI
// launcher such as srun set the variables this reads).
bool launched();

// MPI from MPI_Init_thread (MPI_THREAD_MULTIPLE asked for) to MPI_Finalize.
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();  // MPI_Finalize
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  std::shared_ptr<Communicator> world() const { return world_; }
  // Stops every rank of the job at once (MPI_Abort): after an error on one rank, whose
  // peers would otherwise wait for it forever.
  [[noreturn]] void abort(int code) const;

 private:
  std::shared_ptr<Communicator> world_;
};

}  // namespace tz::mpi
