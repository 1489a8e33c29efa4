#!/usr/bin/python3
"""linear_attention_bench_report: the table of bench/run_linear_attention_bench.sh from its
JSON lines: per decay layout (and the delta rule and TTT-Linear's dual form), T and threads, tensorzoo's ms and GFLOP/s, each PyTorch form's
ms and tensorzoo's speed-up over it, and the growth of the time per doubling of T.

  python3 bench/linear_attention_bench_report.py build-bench/linear_attention_bench.jsonl
"""
import json
import math
import platform
import subprocess
import sys


def cpu_name():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
    ms = {(r["impl"], r["layout"], r["T"], r["threads"]): r for r in rows}
    peers = sorted({r["impl"] for r in rows if r["impl"] != "tensorzoo"})
    print(f"CPU: {cpu_name()}; B 8, H 4, D 64, chunk 64 (TTT: mini-batch 16), f32, forward + backward; "
          "least of the reps")
    print("GFLOP/s counts the chunked algorithm's matrix products (3 x forward); ratio = peer ms / tensorzoo ms;")
    print("growth = time ratio per doubling of T (from the previous T in the table)\n")
    head = "| layout | T | threads | tensorzoo ms | GFLOP/s | growth |" + "".join(f" {p} ms | ratio |" for p in peers)
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for layout in ("head", "channel", "delta", "ttt"):
        for n in sorted({r["threads"] for r in rows}):
            prev = None
            for T in sorted({r["T"] for r in rows}):
                tz = ms.get(("tensorzoo", layout, T, n))
                if not tz:
                    continue
                growth = ""
                if prev:
                    growth = f"{(tz['ms'] / prev[1]) ** (1 / math.log2(T / prev[0])):.2f}x"
                prev = (T, tz["ms"])
                line = f"| {layout} | {T} | {n} | {tz['ms']:.1f} | {tz['gflop'] / tz['ms'] * 1e3:.1f} | {growth} |"
                for p in peers:
                    r = ms.get((p, layout, T, n))
                    line += f" {r['ms']:.1f} | {r['ms'] / tz['ms']:.2f}x |" if r else " - | - |"
                print(line)


if __name__ == "__main__":
    main()
