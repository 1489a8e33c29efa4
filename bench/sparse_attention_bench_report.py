#!/usr/bin/python3
"""sparse_attention_bench_report: the tables of bench/run_sparse_attention_bench.sh from its JSON
lines: per pattern, threads and T, tensorzoo's ms and peak memory with their growth per
doubling of T, each PyTorch form's ms and memory with tensorzoo's speed-up and memory ratio
over it; the targets (>= 3x the blocked PyTorch form at T 4096, time and memory linear in T);
that every form computed the same function (its loss sum(o g) against tensorzoo's); and the
RSS table of the window-256 layer if given.

  python3 bench/sparse_attention_bench_report.py build-bench/sparse_attention_bench.jsonl \
      [--dense-max 4096] [--rss build-bench/sparse_attention_rss.md]
"""
import argparse
import json
import math

from linear_attention_bench_report import cpu_name

H = 4


def growth(prev, T, x):
    return f"{(x / prev[1]) ** (1 / math.log2(T / prev[0])):.2f}x" if prev else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("--dense-max", type=int, default=4096)
    ap.add_argument("--rss")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.jsonl) if l.startswith("{")]
    by = {(r["impl"], r["pattern"], r["T"], r["threads"]): r for r in rows}
    peers = sorted({r["impl"] for r in rows if r["impl"] != "tensorzoo"})
    Ts = sorted({r["T"] for r in rows})
    threads = sorted({r["threads"] for r in rows})
    print(f"CPU: {cpu_name()}; causal attention forward + backward, f32, B 1, H {H}, D 64; window w 256; "
          "BigBird b 64 (1 window block each side, 1 global, 2 random); least of the reps after a warm-up; "
          "memory = peak RSS above the RSS once inputs and masks exist (one process per cell)\n")
    print("tensorzoo (growth = ratio per doubling of T):\n")
    print("| pattern | threads | T | ms | growth | CPU ms | growth | forward ms | peak MB | growth |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    worst_t, worst_m = {}, {}
    for pattern in ("window", "bigbird"):
        for n in threads:
            pt = pc = pm = None
            for T in Ts:
                r = by.get(("tensorzoo", pattern, T, n))
                if not r:
                    continue
                c = r.get("cpu_ms", r["ms"])
                gt, gc, gm = growth(pt, T, r["ms"]), growth(pc, T, c), growth(pm, T, r["peak_mb"])
                # Linearity is judged on CPU time (the work) and memory.
                for w, g in ((worst_t, gc), (worst_m, gm)):
                    if g:
                        w[pattern] = max(w.get(pattern, 0), float(g[:-1]))
                print(f"| {pattern} | {n} | {T} | {r['ms']:.1f} | {gt} | {c:.1f} | {gc} | {r['fwd_ms']:.1f} | "
                      f"{r['peak_mb']:.1f} | {gm} |")
                pt, pc, pm = (T, r["ms"]), (T, c), (T, r["peak_mb"])
    print("\nPyTorch, each cell: ms (tensorzoo's speed-up = peer ms / tensorzoo ms); the same ratio of CPU times "
          "(all threads: the work, which other processes on a shared machine inflate far less than the wall "
          "time); peak MB (peer MB / tensorzoo MB):\n")
    print("| pattern | threads | T | " + " | ".join(peers) + " |")
    print("|---|---|---|" + "---|" * len(peers))
    worst_loss = 0.0
    blocked_4k = []
    for pattern in ("window", "bigbird"):
        for n in threads:
            for T in Ts:
                tz = by.get(("tensorzoo", pattern, T, n))
                if not tz:
                    continue
                cells = []
                for p in peers:
                    r = by.get((p, pattern, T, n))
                    if r:
                        worst_loss = max(worst_loss, abs(r["loss"] - tz["loss"]) / abs(tz["loss"]))
                        cpu = f"CPU {r['cpu_ms'] / tz['cpu_ms']:.1f}x; " if r.get("cpu_ms") and tz.get("cpu_ms") else ""
                        cells.append(f"{r['ms']:.1f} ({r['ms'] / tz['ms']:.1f}x); {cpu}"
                                     f"{r['peak_mb']:.0f} MB ({r['peak_mb'] / tz['peak_mb']:.1f}x)")
                        if p.endswith("blocked") and T == 4096:
                            blocked_4k.append((pattern, n, p, r["ms"] / tz["ms"],
                                               r["cpu_ms"] / tz["cpu_ms"] if tz.get("cpu_ms") else None))
                    elif p.endswith("dense") and T > a.dense_max:
                        gib = H * T * T * 4 / 2**30
                        cells.append(f"not run: each [H, T, T] f32 tensor is {gib:.0f} GiB, forward + backward "
                                     "holds several")
                    else:
                        cells.append("-")
                print(f"| {pattern} | {n} | {T} | " + " | ".join(cells) + " |")
    print(f"\nSame function: the largest relative difference of a PyTorch form's loss sum(o g) from tensorzoo's is "
          f"{worst_loss:.1e} (same inputs, f32).")
    print("\nTargets:")
    for pattern, n, p, s, c in blocked_4k:
        cs = f", CPU time {c:.2f}x" if c else ""
        print(f"  {pattern}, {n} thread(s), T 4096: {s:.2f}x {p}{cs} (target >= 3x): {'met' if s >= 3 else 'NOT met'}")
    for pattern in ("window", "bigbird"):
        if pattern in worst_t:
            ok = worst_t[pattern] <= 2.2 and worst_m[pattern] <= 2.2
            print(f"  {pattern}: largest growth per doubling of T, CPU time {worst_t[pattern]:.2f}x, memory "
                  f"{worst_m[pattern]:.2f}x (linear: <= 2.2x): {'met' if ok else 'NOT met'}")
    if a.rss:
        print("\nPeak RSS of a window-256 attention layer:\n")
        print(open(a.rss).read().rstrip())


if __name__ == "__main__":
    main()
