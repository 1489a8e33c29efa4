#!/usr/bin/env bash
# run_scan_bench.sh: Mamba's selective scan, forward + backward in f32 at B 8, D 512, N 16,
# tensorzoo's fused op (bench/scan_bench.cpp) against Mamba's reference algorithm
# selective_scan_ref in PyTorch (bench/torch_selective_scan.py), 1 and 2 threads, one
# process per measurement (each peak RSS is its own). A benchmark, not a test.
#
#   bench/run_scan_bench.sh                       T in 256 1024 4096 for tensorzoo; PyTorch with
#                                                 Mamba's slicing up to TORCH_MAX_T = 256 (its
#                                                 backward grows as T^2: ~40 s per step there on
#                                                 1 thread with torch 1.13), with the slices taken
#                                                 by unbind (linear in T) up to UNBIND_MAX_T = 4096
#   TORCH_MAX_T=4096 REPS=3 bench/run_scan_bench.sh   the full table (hours)
#   PY=/usr/bin/python3 PY_NEW= ...               one PyTorch only
#
# PY (default /usr/bin/python3: Debian's torch 1.13) and PY_NEW (default python3, the newest
# pip torch; empty = skipped) each give a column. Then a Mamba LM (dim 256, 4 blocks) decodes
# 4000 tokens one at a time: ms per token at positions 100 and 4000. Prints a markdown table (CPU name from
# lscpu, the load average), then the raw JSON lines are in $BUILD/scan_bench.jsonl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
TS=${TS:-"256 1024 4096"}
THREADS_LIST=${THREADS_LIST:-"1 2"}
TORCH_MAX_T=${TORCH_MAX_T:-256}
UNBIND_MAX_T=${UNBIND_MAX_T:-4096}
REPS=${REPS:-2}
TORCH_REPS=${TORCH_REPS:-1}
PY=${PY:-/usr/bin/python3}
PY_NEW=${PY_NEW-python3}

echo "# building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_NATIVE=ON -DTZ_BUILD_TESTS=OFF -DTZ_BUILD_EXAMPLES=OFF \
  -DTZ_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target scan_bench >/dev/null
RES="$BUILD/scan_bench.jsonl"
: >"$RES"
PYS=()
for py in "$PY" $PY_NEW; do
  if "$py" "$ROOT/bench/torch_selective_scan.py" --selftest >&2; then PYS+=("$py"); fi
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for T in $TS; do
  for th in $THREADS_LIST; do
    "$BUILD/bench/scan_bench" --T "$T" --threads "$th" --reps "$REPS" | tee -a "$RES" >&2
    for slicing in index unbind; do
      max=$TORCH_MAX_T
      [ $slicing = unbind ] && max=$UNBIND_MAX_T
      [ "$T" -le "$max" ] || continue
      for py in "${PYS[@]}"; do
        OMP_NUM_THREADS=$th "$py" "$ROOT/bench/torch_selective_scan.py" --T "$T" --threads "$th" --reps "$TORCH_REPS" \
          --slicing $slicing | tee -a "$RES" >&2
      done
    done
  done
done
# Mamba LM decoding (dim 256, 4 blocks): ms per token at positions 100 and 4000
"$BUILD/bench/scan_bench" --decode 4000 --threads 1 | tee "$BUILD/scan_decode.json" >&2
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
"$PY" "$ROOT/bench/scan_bench_report.py" "$RES" --cpu "$CPU" --load "$LOAD_START -> $LOAD_END"
echo
echo "Mamba LM decode (dim 256, 4 blocks, 1 thread): $(cat "$BUILD/scan_decode.json")"
