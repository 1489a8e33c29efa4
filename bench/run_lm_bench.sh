#!/usr/bin/env bash
# run_lm_bench.sh: whole LMs (d 256, 4 layers) with linear-attention, recurrent, SSM and
# long-convolution mixers against tensorzoo's GPT of the same size: training tokens/s at
# T = 256, 1024, 4096 and decoding ms/token after histories of 256, 1024, 4096 tokens
# (bench/lm_throughput.cpp). A benchmark, not a test.
#
#   bench/run_lm_bench.sh                                  build (Release, build-bench/), run all
#   MODELS=gpt,gla TS=256,1024 bench/run_lm_bench.sh       a quick look
#   BUILD=build bench/run_lm_bench.sh                      reuse an existing build directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
MODELS=${MODELS:-gpt,gla,retnet,mamba2,mamba,hyena,s4d}
TS=${TS:-256,1024,4096}
HS=${HS:-256,1024,4096}
REPS=${REPS:-2}
THREADS=${THREADS:-"1 2"}

echo "# building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_NATIVE=ON -DTZ_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target lm_throughput >/dev/null
RES="$BUILD/lm_throughput.jsonl"
: >"$RES"
for n in $THREADS; do
  echo "# $n thread(s)" >&2
  OMP_NUM_THREADS=$n "$BUILD/bench/lm_throughput" --models "$MODELS" --T "$TS" --decode "$HS" --reps "$REPS" \
    --threads "$n" | tee -a "$RES"
done
PYTHONPATH="$ROOT/bench" python3 "$ROOT/bench/lm_throughput_report.py" "$RES"
