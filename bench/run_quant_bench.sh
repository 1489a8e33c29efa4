#!/usr/bin/env bash
# run_quant_bench.sh: decoding with the linear weights in int8 (q8_0) and bf16 against f32, in
# tensorzoo, beside PyTorch's f32 decoding of the same GPT, in one run on this machine. A
# benchmark, not a test: it is in no test suite or CI job.
#
#   bench/run_quant_bench.sh                 build (Release, build-bench/), run (about 5 min on 2 cores)
#   ROUNDS=3 CONFIG=large THREADS="1 2" PEERS="/usr/bin/python3 python3" bench/run_quant_bench.sh
#   ISA=avx2 NATIVE=OFF bench/run_quant_bench.sh    held to AVX2, portable build (bench/isa.sh)
#
# Per round and thread count: bench/quant_decode.cpp generates 256 tokens (greedy, after a
# 16-token prompt, KV cache) with f32, bf16 and int8 weights, and bench/torch_gpt_step.py
# --mode generate does the same in f32 with each Python of PEERS (default Debian's PyTorch 1.13).
# With 2 threads each program runs with its defaults and with OMP_WAIT_POLICY=PASSIVE; the
# better is kept, and each the best of the rounds. First, the GEMV kernels alone
# (quant_decode --mode kernels, one thread): weight GB/s of every kernel this CPU runs.
# Prints the tables and ONE JSON line of the ratios (int8 and bf16 over tensorzoo f32 and over
# each peer) and the targets (int8 >= 3x tensorzoo f32 on one thread, >= 10x PyTorch f32).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/isa.sh
source "$ROOT/bench/isa.sh"
ROUNDS=${ROUNDS:-2}
CONFIG=${CONFIG:-large}
THREADS=${THREADS:-"1 2"}
PEERS=${PEERS:-/usr/bin/python3}
GEN=(--gen-tokens 256 --reps 2 --warmup 1)

for py in $PEERS; do
  "$py" -c "import torch" 2>/dev/null || { echo "run_quant_bench.sh: $py cannot import torch" >&2; exit 1; }
done
echo "# building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_NATIVE=$NATIVE -DTZ_BUILD_TESTS=OFF -DTZ_BUILD_EXAMPLES=OFF \
  -DTZ_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target quant_decode >/dev/null
QD="$BUILD/bench/quant_decode"
RES="$BUILD/quant_bench.jsonl"
: >"$RES"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

tag() { sed -e "s/}\$/,\"variant\":\"$1\"}/" >>"$RES"; }
both() {  # both THREADS CMD...: the command once, and with PASSIVE waiting when THREADS > 1
  local n=$1; shift
  "$@" | tag default
  if ((n > 1)); then OMP_NUM_THREADS=$n OMP_WAIT_POLICY=PASSIVE "$@" | tag passive; fi
}

echo "# GEMV kernels, $CONFIG model's matrices, 1 thread" >&2
OMP_WAIT_POLICY=PASSIVE "$QD" --mode kernels --config "$CONFIG" --threads 1 --reps 3 "${TZ_ISA[@]}" | tag default
for ((r = 1; r <= ROUNDS; r++)); do
  for t in $THREADS; do
    echo "# generation, $CONFIG, $t thread(s), round $r/$ROUNDS" >&2
    for w in f32 bf16 int8; do both "$t" "$QD" --mode generate --weights $w --config "$CONFIG" --threads "$t" "${GEN[@]}" "${TZ_ISA[@]}"
    done
    for py in $PEERS; do
      ver=$("$py" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null)
      both "$t" "$py" "$ROOT/bench/torch_gpt_step.py" --mode generate --config "$CONFIG" --threads "$t" "${GEN[@]}" \
        --json | sed -e "s/}\$/,\"torch\":\"$ver\"}/"
    done
  done
done
"$ROOT/bench/quant_bench_report.py" "$RES" --load-start "$LOAD_START" --load-end "$(cut -d' ' -f1-3 /proc/loadavg)"
