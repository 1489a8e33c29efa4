#!/usr/bin/env bash
# Safetensors load time against the number of tensors: tensorzoo's reader and the
# safetensors library (Rust, through its Python binding; pip install safetensors) on the
# same files, in one run. Linear growth means ~10x time per 10x tensors.
#   bench/run_safetensors_bench.sh [build dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cmake -S . -B "$build" >/dev/null  # picks up bench programs added since it was configured
cmake --build "$build" -j2 --target safetensors_load >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p')"
"$build/bench/safetensors_load" "$dir" 1000 10000 100000 > "$dir/tz.csv"
python3 - "$dir" <<'PY'
import csv, statistics, sys, time
from safetensors.numpy import load_file
import safetensors
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/tz.csv")))
print(f"safetensors {safetensors.__version__} (Python binding of the Rust reader)\n")
print("| tensors | header bytes | tensorzoo ms | safetensors ms | ratio (safetensors / tensorzoo) | tensorzoo growth per 10x |")
print("|---|---|---|---|---|---|")
prev = None
for r in rows:
    n = int(r["tensors"]); tz = float(r["load_ms"])
    times = []
    for _ in range(5):
        t0 = time.perf_counter(); load_file(f"{d}/tensors_{n}.safetensors"); times.append(1e3 * (time.perf_counter() - t0))
    st = statistics.median(times)
    growth = f"{tz / prev:.1f}x" if prev else "-"
    print(f"| {n} | {r['header_bytes']} | {tz:.2f} | {st:.2f} | {st / tz:.2f}x | {growth} |")
    prev = tz
PY
