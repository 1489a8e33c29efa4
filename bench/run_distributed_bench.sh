#!/usr/bin/env bash
# run_distributed_bench.sh: data-parallel scaling of the GPT training step over MPI ranks on
# this machine (bench/distributed_step.cpp), against the same step in one process. A
# benchmark, not a test: it is in no test suite or CI job.
#
#   bench/run_distributed_bench.sh              build (Release, build-bench/), 3 rounds (a few minutes)
#   ROUNDS=5 CONFIG=large BUILD=/path bench/run_distributed_bench.sh
#   NO_BUILD=1 BUILD=build bench/run_distributed_bench.sh     use a build that has bench/distributed_step
#
# Each round runs, in turn (so that a busy spell hits every configuration alike):
#   1x2        one rank, 2 OpenMP threads (the peer: the whole machine in one process)
#   1x1        one rank, 1 thread
#   2x1        mpirun -np 2, 1 thread per rank, Open MPI's shared memory, reduction overlapped
#              (the reduction thread sleeps between progress checks)
#   2x1 spin   the same, the reduction thread waiting inside blocking MPI calls (which spin)
#   2x1 seq    the same, reduction after backward (--no-overlap)
#   2x1 tcp    the same over TCP on loopback (--mca btl self,tcp): the network path
#   2x1 det    TCP, deterministic reduction (alltoall + ordered sum + allgather)
# and keeps each configuration's fastest round. OpenMP threads sleep when idle
# (OMP_WAIT_POLICY=PASSIVE); ranks are bound one per core (--map-by core --bind-to core; BIND=none
# lets them move, better when other programs share the cores).
# Raw JSON lines go to $BUILD/distributed_bench.jsonl; bench/distributed_bench_report.py prints
# the table, the efficiency of 2x1 against 1x2, and the estimate for 4, 8 and 16 machines
# over 10 and 25 Gbit/s links (docs/distributed.md explains the formula).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
ROUNDS=${ROUNDS:-3}
CONFIG=${CONFIG:-small}
PY=${PY:-python3}
export OMP_WAIT_POLICY=PASSIVE

command -v mpirun >/dev/null || { echo "run_distributed_bench.sh: needs mpirun (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then
  echo "# building (Release) in $BUILD" >&2
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_BUILD_TESTS=OFF -DTZ_BUILD_EXAMPLES=OFF \
    -DTZ_BUILD_BENCH=ON -DTZ_USE_MPI=ON >/dev/null
  cmake --build "$BUILD" -j2 --target distributed_step >/dev/null
fi
STEP="$BUILD/bench/distributed_step"
RES="$BUILD/distributed_bench.jsonl"
: >"$RES"
BIND=${BIND:-core}
MPI=(mpirun --map-by core --bind-to "$BIND")
[ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
# More ranks than free cores would need --oversubscribe; 2 ranks on 2 cores do not.
(( $(nproc) < 2 )) && MPI+=(--oversubscribe)

load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(load)
T_START=$(date +%s)
tag() { sed -e "s/}\$/,\"variant\":\"$1\"}/" >>"$RES"; }
args=(--config "$CONFIG" --reps 6 --warmup 2)

for ((r = 1; r <= ROUNDS; r++)); do
  echo "# round $r/$ROUNDS" >&2
  OMP_NUM_THREADS=2 "$STEP" --threads 2 "${args[@]}" | tag 1x2
  OMP_NUM_THREADS=1 "$STEP" --threads 1 "${args[@]}" | tag 1x1
  OMP_NUM_THREADS=1 "${MPI[@]}" -np 2 "$STEP" --threads 1 "${args[@]}" | tag 2x1
  OMP_NUM_THREADS=1 "${MPI[@]}" -np 2 "$STEP" --threads 1 "${args[@]}" --spin | tag "2x1 spin"
  OMP_NUM_THREADS=1 "${MPI[@]}" -np 2 "$STEP" --threads 1 "${args[@]}" --no-overlap | tag "2x1 seq"
  OMP_NUM_THREADS=1 "${MPI[@]}" -np 2 --mca btl self,tcp "$STEP" --threads 1 "${args[@]}" | tag "2x1 tcp"
  OMP_NUM_THREADS=1 "${MPI[@]}" -np 2 --mca btl self,tcp "$STEP" --threads 1 "${args[@]}" --deterministic \
    | tag "2x1 det"
done

"$PY" "$ROOT/bench/distributed_bench_report.py" "$RES" --load-start "$LOAD_START" --load-end "$(load)" \
  --elapsed "$(( $(date +%s) - T_START ))"
