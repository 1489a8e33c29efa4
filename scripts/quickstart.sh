#!/usr/bin/env bash
# The main job: install what is missing, build (Release), and train a small model on
# built-in data, showing the loss fall.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTZ_BUILD_BENCH=OFF
cmake --build build -j2 --target hello_autograd
(cd build && ./examples/hello_autograd)
