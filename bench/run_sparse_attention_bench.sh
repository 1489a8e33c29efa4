#!/usr/bin/env bash
# run_sparse_attention_bench.sh: causal sparse attention, forward + backward, f32, B 1, H 4, D 64:
# a sliding window of 256 and BigBird (b 64) in tensorzoo's tiled pattern kernel against PyTorch's
# dense masked attention and its blocked form (bench/torch_sparse_attention.py), at T = 1k, 4k,
# 16k, on 1 and 2 threads; then the peak RSS and time of a window-256 attention layer over
# T = 1k ... 16k, each in a fresh process. A benchmark, not a test.
#
#   bench/run_sparse_attention_bench.sh                           build (Release, build-bench/), run all
#   TS=1024,4096 THREADS=1 REPS=2 bench/run_sparse_attention_bench.sh   a quick look
# PY (default /usr/bin/python3, Debian's torch 1.13) and PY_NEW (default python3, the newest
# pip torch; empty = skipped) each give two PyTorch columns. Dense masked attention runs up to
# DENSE_MAX (default 4096): at 16k its [H, T, T] f32 scores are 4 GiB each and forward +
# backward keeps several (the report says so instead of a number).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
TS=${TS:-1024,4096,16384}
RSS_TS=${RSS_TS:-1024,2048,4096,8192,16384}
REPS=${REPS:-3}
THREADS=${THREADS:-"1 2"}
DENSE_MAX=${DENSE_MAX:-4096}
PY=${PY:-/usr/bin/python3}
PY_NEW=${PY_NEW-python3}

echo "# building (Release) in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTZ_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target sparse_attention >/dev/null
TZ="$BUILD/bench/sparse_attention"
PT="$ROOT/bench/torch_sparse_attention.py"
OUT="$(cd "$BUILD" && pwd)"
RES="$OUT/sparse_attention_bench.jsonl"
BLOCKS="$OUT/sparse_attention_bigbird.jsonl"
: >"$RES"
"$TZ" --bigbird-blocks "512,$TS" >"$BLOCKS"
PYS=("$PY")
[ -n "$PY_NEW" ] && PYS+=("$PY_NEW")
for py in "${PYS[@]}"; do PYTHONWARNINGS=ignore "$py" "$PT" --selftest 2>/dev/null >&2; done
for n in $THREADS; do
  for pattern in window bigbird; do
    for T in ${TS//,/ }; do
      echo "# $n thread(s), $pattern, T $T" >&2
      OMP_NUM_THREADS=$n "$TZ" --json --pattern "$pattern" --T "$T" --threads "$n" --reps "$REPS" | tee -a "$RES"
      for py in "${PYS[@]}"; do
        for impl in blocked dense; do
          if [ "$impl" = dense ] && [ "$T" -gt "$DENSE_MAX" ]; then continue; fi
          OMP_NUM_THREADS=$n PYTHONWARNINGS=ignore "$py" "$PT" --impl $impl --pattern "$pattern" --T "$T" \
            --threads "$n" --reps "$REPS" --blocks "$BLOCKS" 2>/dev/null | tee -a "$RES"
        done
      done
    done
  done
done
echo "# peak RSS of a window-256 attention layer, one process per T" >&2
OMP_NUM_THREADS=1 "$TZ" --rss --T "$RSS_TS" --threads 1 | tee "$OUT/sparse_attention_rss.md" >&2 || true
PYTHONPATH="$ROOT/bench" "${PY_NEW:-$PY}" "$ROOT/bench/sparse_attention_bench_report.py" "$RES" \
  --dense-max "$DENSE_MAX" --rss "$OUT/sparse_attention_rss.md"
