#!/usr/bin/env bash
# The libFuzzer harnesses of tests/fuzz/, in the sanitizer build (build-asan, clang, address
# and undefined-behaviour sanitizers: the `sanitize` preset): builds them, runs each from its
# seed corpus, two at a time, and prints per harness the executions, the edges covered (of
# all linked in), the edges covered in the sources the harness aims at (of their functions'
# edges) and the crashes.
#   scripts/fuzz.sh                          every harness for FUZZ_SECONDS (default 60)
#   scripts/fuzz.sh config cli               only these harnesses
#   FUZZ_RUNS=10000000 scripts/fuzz.sh       a long run: that many executions per harness
# Inputs that reach new coverage go to a scratch copy of the corpus (FUZZ_CORPUS_OUT=DIR keeps
# them), so the repository's seeds stay as they are. A crash leaves its input in
# build-asan/fuzz/<harness>/ and the script fails, printing the end of that harness's log.
set -euo pipefail
cd "$(dirname "$0")/.."
all=(safetensors config tokenizer cli)
harnesses=("${@:-${all[@]}}")
for h in "${harnesses[@]}"; do
  [ -f "tests/fuzz/fuzz_$h.cpp" ] || { echo "fuzz.sh: no harness '$h' (have: ${all[*]})" >&2; exit 2; }
done
scripts/install_deps.sh clang-16 libclang-rt-16-dev libomp-16-dev llvm-16
build=build-asan
cmake --preset sanitize >/dev/null
cmake --build $build -j2 --target $(printf 'fuzz_%s ' "${harnesses[@]}")

# allocator_may_return_null: a failed huge allocation reaches the code (a tz::Error), as in
# the tests; libFuzzer's own -malloc_limit_mb (= -rss_limit_mb) still reports one above 3 GB.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-16/bin/llvm-symbolizer
export OMP_NUM_THREADS=1
limit=(-max_total_time="${FUZZ_SECONDS:-60}")
[ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
scratch=${FUZZ_CORPUS_OUT:-$(mktemp -d)}

# The sources each harness is aimed at: its coverage is reported over their functions. The
# cli harness has none to name: CLI11's parser is inlined into it and the app's definitions
# run once, before coverage is counted, so its measure is the edges column alone.
declare -A targets=([safetensors]="core/safetensors.cpp core/json.cpp train/run_dir.cpp"
                    [config]="nn/config.cpp core/json.cpp" [tokenizer]="data/tokenizer.cpp data/bpe.cpp" [cli]="")

run() {  # one harness; its log in build-asan/fuzz/<h>.log
  local h=$1 out=$build/fuzz/$h dict=()
  mkdir -p "$out/crashes" "$scratch/$h"
  [ -f "tests/fuzz/$h.dict" ] && dict=(-dict="tests/fuzz/$h.dict")
  $build/tests/fuzz/fuzz_$h "${limit[@]}" "${dict[@]}" -max_len=65536 -timeout=10 -rss_limit_mb=3072 \
    -print_final_stats=1 -artifact_prefix="$out/crashes/" "$scratch/$h" "tests/fuzz/corpus/$h" >"$out.log" 2>&1
  echo $? >"$out.rc"
  # Edge coverage of the target sources reached by the corpus the run ended with.
  [ -n "${targets[$h]}" ] || { echo - >"$out.cov"; return; }
  $build/tests/fuzz/fuzz_$h -runs=0 -print_coverage=1 "$scratch/$h" "tests/fuzz/corpus/$h" 2>&1 |
    awk -v files="${targets[$h]}" '/^(UN)?COVERED_FUNC/ {
      n = split(files, f, " "); hit = 0
      for (i = 1; i <= n; ++i) if (index($NF, "/" f[i])) hit = 1
      if (!hit) next
      split($5, e, "/"); got += e[1]; all += e[2]
    } END { printf "%d/%d", got, all }' >"$out.cov"
}
for h in "${harnesses[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n || true; done
  rm -rf "$build/fuzz/$h" && run "$h" &
done
wait

status=0
printf '%-12s %12s %8s %10s %16s %8s\n' harness executions edges of-edges "target edges" crashes
for h in "${harnesses[@]}"; do
  log=$build/fuzz/$h.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  edges=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  total=$(sed -n 's/.*Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -1)
  found=$(find "$build/fuzz/$h/crashes" -type f | wc -l)
  printf '%-12s %12s %8s %10s %16s %8s\n' "$h" "${runs:-?}" "${edges:-?}" "${total:-?}" "$(cat "$build/fuzz/$h.cov")" "$found"
  if [ "${edges:-0}" = 0 ]; then  # libFuzzer runs blind when nothing is instrumented
    status=1
    echo "fuzz_$h: no coverage feedback (see tests/fuzz/coverage_allowlist.txt)" >&2
  fi
  if [ "$(cat "$build/fuzz/$h.rc")" != 0 ] || [ "$found" != 0 ]; then
    status=1
    echo "fuzz_$h failed (exit $(cat "$build/fuzz/$h.rc")); the end of $log:" >&2
    tail -60 "$log" >&2
  fi
done
[ -n "${FUZZ_CORPUS_OUT:-}" ] || rm -rf "$scratch"
exit $status
