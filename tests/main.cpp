// The doctest entry point shared by every suite: fresh allocations are filled with NaN so
// that a kernel that forgets to write part of its output fails its comparison.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "core/tensor.h"

int main(int argc, char** argv) {
  tz::set_fill_uninitialized(true);
  doctest::Context context(argc, argv);
  return context.run();
}
