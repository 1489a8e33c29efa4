#!/usr/bin/env bash
# The main job: install what is missing, build (Release), and train the default GPT on the
# built-in grammar text, showing the loss fall, a sample, and where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
# Idle OpenMP threads sleep instead of spinning: on a shared or busy machine spinning made
# steps several times slower (docs/performance.md). Set it yourself to override.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTZ_NATIVE=ON -DTZ_BUILD_BENCH=OFF
cmake --build build -j2 --target tensorzoo_cli
# The main job replaces its own earlier run (train refuses a non-empty --out without --force).
build/tensorzoo train --out runs/gpt --force "$@"
