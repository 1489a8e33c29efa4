#!/usr/bin/env bash
# run_memory_bench.sh: segment memory (Transformer-XL) in tensorzoo against PyTorch, side by
# side on this machine, 2 threads. A benchmark, not a test: it is in no test suite or CI job.
#
#   bench/run_memory_bench.sh                    build (Release, build-bench/), run everything
#                                                (2 rounds: ~15-30 min; 1 round of 1 rep took 8 min at load 5)
#   ROUNDS=1 TRAIN_REPS=1 DECODE_REPS=1 HISTORIES="256 1024" bench/run_memory_bench.sh   a quick look
#   PY=/path/python3 PY_NEW= bench/run_memory_bench.sh     one PyTorch only
#
# PY (default /usr/bin/python3, Debian's torch 1.13) and PY_NEW (default python3, the newest
# pip torch; empty, or the same torch version as PY, = skipped) each give a PyTorch column.
# Measurements (bench/memory_step.cpp and bench/torch_memory_step.py, one process each):
#   train   ms per AdamW step, batch 8, segment T = 256: the plain model (mem 0) and
#           Transformer-XL with memory M = 256 (the ratio TXL / plain is the cost of memory)
#   decode  ms per greedy token over GEN_TOKENS = 256 tokens (one whole segment), batch 1, after
#           histories of $HISTORIES tokens: TXL (M = 256, segment KV cache: flat in the
#           history) and the plain model's KV cache over the whole history
# Round after round the frameworks alternate (who goes first alternates too) and each runs
# with its defaults and with OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE; each framework's best
# median is reported (bench/memory_bench_report.py: markdown tables with the CPU name, torch
# versions, tokens/s and ratios, then one JSON line). Raw JSON lines go to
# $BUILD/memory_bench.jsonl; the report can be made again from them alone.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
TRAIN_REPS=${TRAIN_REPS:-3}
DECODE_REPS=${DECODE_REPS:-3}
GEN_TOKENS=${GEN_TOKENS:-256}  # one whole segment: TXL's once-per-segment memory projection amortised as in a long run
HISTORIES=${HISTORIES:-"256 1024 4096"}
PY=${PY:-/usr/bin/python3}
PY_NEW=${PY_NEW-python3}

torch_version() { "$1" -c "import torch; print(torch.__version__)" 2>/dev/null; }
V_OLD=$(torch_version "$PY") || {
  echo "run_memory_bench.sh: PyTorch is not importable by $PY (sudo apt-get install python3-torch)," \
    "or set PY=/path/to/a/python3 with torch" >&2
  exit 1
}
PYS=("$PY")
if [ -n "$PY_NEW" ]; then
  if V_NEW=$(torch_version "$PY_NEW") && [ "$V_NEW" != "$V_OLD" ]; then
    PYS+=("$PY_NEW")
  else
    echo "# PY_NEW=$PY_NEW: no torch, or the same torch $V_OLD as PY; one PyTorch column" >&2
  fi
fi

echo "# building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_NATIVE=ON -DTZ_BUILD_TESTS=OFF -DTZ_BUILD_EXAMPLES=OFF \
  -DTZ_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target memory_step >/dev/null
TZ="$BUILD/bench/memory_step"
PT="$ROOT/bench/torch_memory_step.py"
RES="$BUILD/memory_bench.jsonl"
: >"$RES"
# The twin computes tensorzoo's function: its decoders agree with its segment forward, and on
# tensorzoo's weights its logits (segments with memory, and decoding across segments) are
# tensorzoo's. Either failing stops the run.
"$TZ" --mode check --mem 256 --out "$BUILD/memory_check.safetensors" >/dev/null
for py in "${PYS[@]}"; do
  "$py" "$PT" --selftest >&2
  "$py" "$PT" --check-against "$BUILD/memory_check.safetensors" >&2
done

load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(load)
T_START=$(date +%s)

# tag VARIANT: appends "variant" to each JSON line read from stdin and stores it.
tag() { sed -e "s/}\$/,\"variant\":\"$1\"}/" >>"$RES"; }
run2() {  # run2 CMD...: with the defaults, then with passive OpenMP threads
  "$@" --threads "$THREADS" --json | tag default
  OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE "$@" --threads "$THREADS" --json | tag passive
}
all() {  # all ROUND ARGS...: every framework once, the order turned each round
  local r=$1; shift
  local cmds=("tz" "${PYS[@]}")
  (( r % 2 )) || cmds=("${PYS[@]}" "tz")
  for c in "${cmds[@]}"; do
    if [ "$c" = tz ]; then run2 "$TZ" "$@"; else run2 "$c" "$PT" "$@"; fi
  done
}

for ((r = 1; r <= ROUNDS; r++)); do
  echo "# round $r/$ROUNDS: train" >&2
  for mem in 0 256; do all $r --mode train --mem $mem --reps "$TRAIN_REPS" --warmup 1; done
  for H in $HISTORIES; do
    echo "# round $r/$ROUNDS: decode after $H tokens" >&2
    for mem in 256 0; do
      all $r --mode decode --mem $mem --history "$H" --gen-tokens "$GEN_TOKENS" --reps "$DECODE_REPS" --warmup 1
    done
  done
done

LOAD_END=$(load)
ELAPSED=$(($(date +%s) - T_START))
CPU=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')

"$PY" "$ROOT/bench/memory_bench_report.py" "$RES" --cpu "$CPU" --cores "$(nproc)" --load-start "$LOAD_START" \
  --load-end "$LOAD_END" --elapsed "$ELAPSED"
