// The communicator of the suites that run inside mpirun (MPI_COMM_WORLD).
#pragma once

#include "core/communicator.h"

namespace tz::testing {
Communicator& world();
}
