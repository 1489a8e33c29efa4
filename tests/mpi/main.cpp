// The doctest entry point of the suites that run inside mpirun (every rank runs every case,
// in the same order: the cases call collectives). Fresh allocations are NaN, as in every
// suite. Only rank 0 reports; a failure on another rank shows in its exit status and output.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "core/mpi_comm.h"
#include "core/parallel.h"
#include "core/tensor.h"
#include "tests/mpi/world.h"

namespace {
std::shared_ptr<tz::Communicator> g_world;
}
tz::Communicator& tz::testing::world() { return *g_world; }

int main(int argc, char** argv) {
  tz::mpi::Session session(&argc, &argv);
  g_world = session.world();
  tz::set_fill_uninitialized(true);
  tz::set_num_threads(1);  // ranks share the cores (mpirun --oversubscribe)
  doctest::Context context(argc, argv);
  if (g_world->rank() != 0) context.setOption("minimal", true);
  const int failed = context.run();
  // Every rank's verdict: one failing rank fails the test, whichever rank reports.
  double any = failed != 0 ? 1 : 0;
  g_world->allreduce_sum(&any, 1);
  g_world.reset();
  return any > 0 ? 1 : 0;
}
