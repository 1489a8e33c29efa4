#!/usr/bin/env bash
# run_long_conv_bench.sh: the causal long convolution (forward + backward, f32, B 8, C 256) in
# tensorzoo (FFT path and direct sums) against torch.fft's convolution (safari's fftconv), at
# L = 128, 1k, 4k, 16k (direct sums up to 4k), on 1 and 2 threads. A benchmark, not a test.
#
#   bench/run_long_conv_bench.sh                       build (Release, build-bench/), run all
#   LS=256,1024 REPS=2 bench/run_long_conv_bench.sh    a quick look
# PY (default /usr/bin/python3, Debian's torch 1.13) and PY_NEW (default python3, the newest
# pip torch; empty = skipped) each give a PyTorch column.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
LS=${LS:-128,1024,4096,16384}
REPS=${REPS:-3}
DIRECT_MAX=${DIRECT_MAX:-4096}
THREADS=${THREADS:-"1 2"}
PY=${PY:-/usr/bin/python3}
PY_NEW=${PY_NEW-python3}

echo "# building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_NATIVE=ON -DTZ_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target long_conv_step >/dev/null
RES="$(cd "$BUILD" && pwd)/long_conv_bench.jsonl"
: >"$RES"
PYS=("$PY")
[ -n "$PY_NEW" ] && PYS+=("$PY_NEW")
for py in "${PYS[@]}"; do "$py" "$ROOT/bench/torch_long_conv.py" --selftest >&2; done
for n in $THREADS; do
  echo "# $n thread(s): tensorzoo" >&2
  OMP_NUM_THREADS=$n "$BUILD/bench/long_conv_step" --threads "$n" --L "$LS" --reps "$REPS" --direct-max "$DIRECT_MAX" |
    tee -a "$RES"
  for py in "${PYS[@]}"; do
    echo "# $n thread(s): $py" >&2
    OMP_NUM_THREADS=$n "$py" "$ROOT/bench/torch_long_conv.py" --threads "$n" --L "$LS" --reps "$REPS" | tee -a "$RES"
  done
done
PYTHONPATH="$ROOT/bench" "${PY_NEW:-$PY}" "$ROOT/bench/long_conv_bench_report.py" "$RES"
