#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test with CTest, then
# install the package to a scratch prefix and build the consumer project against it.
# With --sanitize, the build and the suite run under address + undefined sanitizers. Both
# builds treat warnings as errors (TZ_WERROR).
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
  cmake -S . -B $build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTZ_TSAN=ON -DTZ_USE_OPENMP=OFF -DTZ_WERROR=ON \
        -DTZ_BUILD_EXAMPLES=OFF -DTZ_BUILD_BENCH=OFF
  cmake --build $build -j2 --target test_train
  TSAN_OPTIONS=halt_on_error=1 $build/tests/test_train -tc="threads:*"
  exit 0
fi

if [ "${1:-}" = "--sanitize" ]; then
  build=build-asan
  cmake -S . -B $build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTZ_SANITIZE=ON -DTZ_WERROR=ON \
        -DTZ_BUILD_EXAMPLES=OFF -DTZ_BUILD_BENCH=OFF
  cmake --build $build -j2
  # allocator_may_return_null: a failed huge allocation reaches the code (a tz::Error), as without ASan.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
  export TZ_CONFORMANCE_LEARN=0  # the learns check's training runs in the release pass
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd $build && ctest --output-on-failure -j2)
  exit 0
fi

build=build
cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DTZ_WERROR=ON
cmake --build $build -j2
rm -f $build/zoo_conformance.md
(cd $build && ctest --output-on-failure -j2)
# The zoo's conformance table, written by test_zoo (times measured on this CPU).
echo; lscpu | sed -n 's/^Model name: *//p'; cat $build/zoo_conformance.md

prefix=$(mktemp -d)
cmake --install $build --prefix "$prefix" >/dev/null
cmake -S examples/consumer -B $build/consumer -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build $build/consumer -j2 >/dev/null
$build/consumer/consumer
rm -rf "$prefix"
