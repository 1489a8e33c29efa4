#!/usr/bin/env bash
# run_linear_attention_bench.sh: the chunked linear attention kernel, the chunked delta rule
# (forward + backward, f32, B 8, H 4, D 64, chunk 64) and TTT-Linear's dual form (mini-batch
# 16) in tensorzoo against the same algorithms written in PyTorch ops (chunked, or the dual
# form) and against PyTorch's recurrent loops (for TTT, the primal form), for both decay
# layouts (per head, per key channel), the delta rule and TTT, on 1 and 2 threads. A
# benchmark, not a test.
#
#   bench/run_linear_attention_bench.sh                   build (Release, build-bench/), run all
#   TS="256,1024" REPS=2 bench/run_linear_attention_bench.sh   a quick look
#   BUILD=build bench/run_linear_attention_bench.sh       reuse an existing build directory
#
# PY (default /usr/bin/python3, Debian's torch 1.13) and PY_NEW (default python3, the newest
# pip torch; empty = skipped) each give PyTorch columns. The recurrent loop in PyTorch keeps
# every step's state for its backward (T x B x H x 64 x 64 floats: 2 GB at T 4096), so it runs
# only up to REC_MAX_T (default 1024). Timings: the least of REPS after a warm-up.
# bench/linear_attention_bench_report.py prints the table (ms, ratio, GFLOP/s, growth per
# T doubling) with the CPU name; raw JSON lines go to $BUILD/linear_attention_bench.jsonl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
TS=${TS:-256,1024,4096}
REPS=${REPS:-3}
REC_MAX_T=${REC_MAX_T:-1024}
THREADS=${THREADS:-"1 2"}
PY=${PY:-/usr/bin/python3}
PY_NEW=${PY_NEW-python3}

echo "# building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_NATIVE=ON -DTZ_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target linear_attention_step >/dev/null
RES="$BUILD/linear_attention_bench.jsonl"
: >"$RES"
PYS=("$PY")
[ -n "$PY_NEW" ] && PYS+=("$PY_NEW")
for py in "${PYS[@]}"; do
  "$py" "$ROOT/bench/torch_linear_attention.py" --selftest >&2
done
for n in $THREADS; do
  echo "# $n thread(s): tensorzoo" >&2
  OMP_NUM_THREADS=$n "$BUILD/bench/linear_attention_step" --threads "$n" --T "$TS" --reps "$REPS" | tee -a "$RES"
  for py in "${PYS[@]}"; do
    echo "# $n thread(s): $py" >&2
    OMP_NUM_THREADS=$n "$py" "$ROOT/bench/torch_linear_attention.py" --threads "$n" --T "$TS" --reps "$REPS" \
      --recurrent-max-T "$REC_MAX_T" | tee -a "$RES"
  done
done
"${PY_NEW:-$PY}" "$ROOT/bench/linear_attention_bench_report.py" "$RES"
