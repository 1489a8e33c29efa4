#!/usr/bin/env bash
# run_gpt_bench.sh: tensorzoo's GPT against PyTorch (Debian's python3-torch 1.13), side by side
# on this machine. A benchmark, not a test: it is in no test suite or CI job.
#
#   bench/run_gpt_bench.sh            build (Release, build-bench/), run everything (4-13 min on 2 cores)
#   ROUNDS_SMALL=3 ROUNDS_LARGE=2 BUILD=/path bench/run_gpt_bench.sh
#   CONFIGS=small ROUNDS_SMALL=1 MEM_TS="512 1024" bench/run_gpt_bench.sh     a quick look
#   ISA=avx2 NATIVE=OFF bench/run_gpt_bench.sh   every framework held to AVX2, tensorzoo's portable build
#                                           (bench/isa.sh): an AVX2-only machine class on this one
#   ALIBI_ONLY=1 bench/run_gpt_bench.sh     only tensorzoo's training step, learned positions against
#                                           ALiBi (about 3 min; no PyTorch needed), and on one thread
#                                           ALiBi with denormals flushed to zero (gpt_step --ftz)
#
# For each config (small, large) x threads (1, 2) it alternates tensorzoo and PyTorch runs,
# round after round, and keeps each framework's best median: train step, forward-only and
# generation (bench/gpt_step.cpp and bench/torch_gpt_step.py, one process per measurement so
# peak RSS belongs to one measurement). With 2 threads each framework runs twice per round,
# with its defaults (tz::set_num_threads / torch.set_num_threads(N)) and with
# OMP_NUM_THREADS=N OMP_WAIT_POLICY=PASSIVE (OpenMP threads sleep instead of spinning while
# they wait: much better when the cores are shared); the better configuration is reported.
# With ALIBI=1 (the default) each round also times tensorzoo's training step with ALiBi instead
# of learned positions (gpt_step --pos alibi, right after the learned-position run), and the
# report prints ALiBi's tokens/s over the learned model's (target: within 10%, >= 0.90).
# Then the memory scaling of one forward+backward (small model, batch 1, T = 512 ... 4096)
# for both, and the FMA peak (bench/fma_peak.cpp). Prints a markdown table per config,
# generation against the weight-read bound, the scaling table, and ends with ONE JSON line
# of every ratio and whether each target is met (bench/gpt_bench_report.py, which also draws
# $BUILD/gpt_bench_ratios.png and $BUILD/gpt_bench_memory.png). Raw JSON lines of every run go
# to $BUILD/gpt_bench.jsonl; the report can be made again from them alone.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/isa.sh
source "$ROOT/bench/isa.sh"
ROUNDS_SMALL=${ROUNDS_SMALL:-2}
ROUNDS_LARGE=${ROUNDS_LARGE:-1}
PY=${PY:-/usr/bin/python3}
MEM_TS=${MEM_TS:-"512 1024 2048 4096"}
CONFIGS=${CONFIGS:-"small large"}  # a subset for a quick look
ALIBI=${ALIBI:-1}
ALIBI_ONLY=${ALIBI_ONLY:-0}

if [ "$ALIBI_ONLY" = 0 ] && ! "$PY" -c "import torch" 2>/dev/null; then
  echo "run_gpt_bench.sh: PyTorch is not importable by $PY; the peer needs Debian's python3-torch" \
    "(sudo apt-get install python3-torch), or PY=/path/to/a/python3 with torch" >&2
  exit 1
fi
echo "# building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_NATIVE=$NATIVE -DTZ_BUILD_TESTS=OFF -DTZ_BUILD_EXAMPLES=OFF \
  -DTZ_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target gpt_step fma_peak >/dev/null
TZ="$BUILD/bench/gpt_step"
PT="$ROOT/bench/torch_gpt_step.py"
RES="$BUILD/gpt_bench.jsonl"
: >"$RES"

load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(load)
T_START=$(date +%s)

# tag VARIANT: appends "variant" to each JSON line read from stdin and stores it.
tag() { sed -e "s/}\$/,\"variant\":\"$1\"}/" >>"$RES"; }
run_tz() {  # run_tz THREADS ARGS...: 1 thread once; 2 threads with and without PASSIVE
  local n=$1; shift
  "$TZ" --threads "$n" "${TZ_ISA[@]}" "$@" --json | tag default
  if (( n > 1 )); then
    OMP_NUM_THREADS=$n OMP_WAIT_POLICY=PASSIVE "$TZ" --threads "$n" "${TZ_ISA[@]}" "$@" --json | tag passive
  fi
}
run_pt() {  # run_pt THREADS ARGS...: the same two thread configurations for PyTorch
  local n=$1; shift
  "$PY" "$PT" --threads "$n" "$@" --json | tag default
  if (( n > 1 )); then
    OMP_NUM_THREADS=$n OMP_WAIT_POLICY=PASSIVE "$PY" "$PT" --threads "$n" "$@" --json | tag passive
  fi
}

if [ "$ALIBI_ONLY" != 0 ]; then
  for config in $CONFIGS; do
    if [ "$config" = small ]; then rounds=$ROUNDS_SMALL; tr=(--reps 3 --warmup 1); else rounds=$ROUNDS_LARGE; tr=(--reps 2 --warmup 1); fi
    for threads in 1 2; do
      for ((r = 1; r <= rounds; r++)); do
        echo "# ALiBi against learned positions: $config, $threads thread(s), round $r/$rounds" >&2
        for pos in learned alibi; do run_tz $threads --config $config --mode train --pos $pos "${tr[@]}"; done
        # The diagnostic: ALiBi with denormals flushed to zero (one thread: the flag is per thread).
        if (( threads == 1 )); then run_tz 1 --config $config --mode train --pos alibi --ftz "${tr[@]}"; fi
      done
    done
  done
  "$PY" "$ROOT/bench/gpt_bench_report.py" "$RES" --alibi-only
  exit 0
fi

echo "# FMA peak" >&2
"$BUILD/bench/fma_peak" --json | tag default

for config in $CONFIGS; do
  if [ "$config" = small ]; then rounds=$ROUNDS_SMALL; tr=(--reps 3 --warmup 1); fw=(--reps 5 --warmup 1)
  else rounds=$ROUNDS_LARGE; tr=(--reps 2 --warmup 1); fw=(--reps 3 --warmup 1); fi
  gen=(--reps 2 --warmup 1 --gen-tokens 256)
  for threads in 1 2; do
    for ((r = 1; r <= rounds; r++)); do
      echo "# $config, $threads thread(s), round $r/$rounds" >&2
      for mode in train forward generate; do
        case $mode in train) a=("${tr[@]}");; forward) a=("${fw[@]}");; generate) a=("${gen[@]}");; esac
        # Alternate who goes first, so neither always runs right after the other's warm caches.
        if (( r % 2 )); then
          run_tz $threads --config $config --mode $mode "${a[@]}"
          run_pt $threads --config $config --mode $mode "${a[@]}"
        else
          run_pt $threads --config $config --mode $mode "${a[@]}"
          run_tz $threads --config $config --mode $mode "${a[@]}"
        fi
        if [ "$mode" = train ] && [ "$ALIBI" != 0 ]; then
          run_tz $threads --config $config --mode train --pos alibi "${a[@]}"
        fi
      done
    done
  done
done

echo "# memory scaling (small model, batch 1, one forward+backward, 1 thread)" >&2
for T in $MEM_TS; do
  run_tz 1 --config small --mode memory --T "$T"
  OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE "$PY" "$PT" --threads 1 --config small --mode memory --T "$T" \
    --json | tag passive
done

LOAD_END=$(load)
ELAPSED=$(( $(date +%s) - T_START ))

"$PY" "$ROOT/bench/gpt_bench_report.py" "$RES" --load-start "$LOAD_START" --load-end "$LOAD_END" \
  --elapsed "$ELAPSED" --plots "$BUILD"
