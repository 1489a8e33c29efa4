// The doctest entry point shared by every suite: fresh allocations are filled with NaN so
// that a kernel that forgets to write part of its output fails its comparison.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "core/parallel.h"
#include "core/tensor.h"
#include "tests/runtime_cases.h"

std::vector<tz::testing::CaseRegistrar>& tz::testing::runtime_case_registrars() {
  static std::vector<CaseRegistrar> registrars;
  return registrars;
}

int main(int argc, char** argv) {
  tz::set_fill_uninitialized(true);
  // The kernel tests pick sizes just above the parallel grain to reach their threaded
  // paths; scripts/test.sh runs them with OMP_WAIT_POLICY=PASSIVE, whose larger grain would
  // turn those paths serial.
  tz::set_passive_wait_sizing(false);
  for (tz::testing::CaseRegistrar add_cases : tz::testing::runtime_case_registrars()) add_cases();
  doctest::Context context(argc, argv);
  return context.run();
}
