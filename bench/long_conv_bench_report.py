#!/usr/bin/python3
"""long_conv_bench_report: the table of bench/run_long_conv_bench.sh from its JSON lines: per
threads and L, tensorzoo's FFT path (ms, growth per doubling of L), its direct sums, and each
PyTorch FFT convolution with tensorzoo's speed-up over it; and where FFT overtakes direct.

  python3 bench/long_conv_bench_report.py build-bench/long_conv_bench.jsonl
"""
import json
import math
import sys

from linear_attention_bench_report import cpu_name


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
    ms = {(r["impl"], r["L"], r["threads"]): r["ms"] for r in rows}
    peers = sorted({r["impl"] for r in rows if r["impl"].startswith("torch")})
    print(f"CPU: {cpu_name()}; B 8, C 256, f32, forward + backward; least of the reps; ratio = peer ms / tensorzoo ms\n")
    head = "| threads | L | tensorzoo FFT ms | growth | direct ms |" + "".join(f" {p} ms | ratio |" for p in peers)
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for n in sorted({r["threads"] for r in rows}):
        prev, overtake = None, None
        for L in sorted({r["L"] for r in rows}):
            f = ms.get(("tensorzoo-fft", L, n))
            if f is None:
                continue
            d = ms.get(("tensorzoo-direct", L, n))
            if d is not None and overtake is None and f < d:
                overtake = L
            growth = f"{(f / prev[1]) ** (1 / math.log2(L / prev[0])):.2f}x" if prev else ""
            prev = (L, f)
            line = f"| {n} | {L} | {f:.1f} | {growth} | {d:.1f} |" if d is not None else f"| {n} | {L} | {f:.1f} | {growth} | - |"
            for p in peers:
                t = ms.get((p, L, n))
                line += f" {t:.1f} | {t / f:.2f}x |" if t else " - | - |"
            print(line)
        print(f"\n{n} thread(s): the FFT path is faster than the direct sums from L = {overtake} (the smallest L "
              "measured where it is)\n" if overtake else "")


if __name__ == "__main__":
    main()
