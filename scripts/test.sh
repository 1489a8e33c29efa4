#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test with CTest, then
# install the package to a scratch prefix and build the consumer project against it.
# With --sanitize, the build (clang) and the suite run under address + undefined sanitizers;
# with --tsan, the threading tests under the thread sanitizer. Every build treats warnings as
# errors (TZ_WERROR); the builds are the presets of CMakePresets.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# Idle OpenMP threads sleep instead of spinning: on a shared or busy machine spinning made
# steps several times slower (docs/performance.md). Set it yourself to override.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
scripts/install_deps.sh

if [ "${1:-}" = "--tsan" ]; then
  # The thread sanitizer on the suites that run models in several threads of an application
  # (tests/train/test_threads.cpp). OpenMP is off: libgomp is not instrumented, so its own
  # (correct) synchronisation would be reported.
  build=build-tsan
  cmake --preset tsan
  cmake --build $build -j2 --target test_train
  TSAN_OPTIONS=halt_on_error=1 $build/tests/test_train -tc="threads:*"
  exit 0
fi

if [ "${1:-}" = "--sanitize" ]; then
  # clang: it builds this tree about three times faster than g++ under the sanitizers, and the
  # same build holds the libFuzzer harnesses (scripts/fuzz.sh).
  scripts/install_deps.sh clang-16 libclang-rt-16-dev libomp-16-dev llvm-16
  build=build-asan
  cmake --preset sanitize
  cmake --build $build -j2
  # allocator_may_return_null: a failed huge allocation reaches the code (a tz::Error), as without ASan.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
  export TZ_CONFORMANCE_LEARN=0  # the learns check's training runs in the release pass
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-16/bin/llvm-symbolizer  # file:line in reports
  (cd $build && ctest --output-on-failure -j2)
  exit 0
fi

# ---- MPI: data-parallel training and ring attention across ranks (README: Training on several
# machines). OpenMPI makes the release build find MPI (TZ_USE_MPI), and CTest then runs the MPI
# tests under mpirun -np 2 (ring attention also on 4) with --oversubscribe --allow-run-as-root:
# tests/mpi inside mpirun, tests/distributed starting it (label mpi, ~15 s). The sanitizer and
# thread-sanitizer passes above build without MPI (Open MPI is not instrumented).
scripts/install_deps.sh libopenmpi-dev openmpi-bin
# ---- end MPI

build=build
cmake --preset release
cmake --build $build -j2
rm -f $build/zoo_conformance.md
(cd $build && ctest --output-on-failure -j2)
# The zoo's conformance table, written by test_zoo (times measured on this CPU).
echo; lscpu | sed -n 's/^Model name: *//p'; cat $build/zoo_conformance.md

# The installed package, static and shared, used through CMake and pkg-config by the C++ and C
# programs of examples/.
scripts/check_install.sh $build
