#!/usr/bin/env python3
"""Tables and one JSON line from bench/run_quant_bench.sh's raw results (quant_bench.jsonl)."""
import argparse
import json
import platform
import subprocess


def cpu_name():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("--load-start", default="")
    ap.add_argument("--load-end", default="")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.jsonl) if l.strip()]

    kern = [r for r in rows if r.get("mode") == "kernels"]
    if kern:
        print(f"GEMV kernels ({cpu_name()}, 1 thread): weight GB/s over the model's matrices")
        print("| format | kernel | M=1 | M=2 | M=3 | M=4 |\n|---|---|---|---|---|---|")
        names = []
        for r in kern:
            if (r["format"], r["kernel"]) not in names:
                names.append((r["format"], r["kernel"]))
        for f, k in names:
            cells = [next((f"{r['weight_gbs']:.1f}" for r in kern if (r["format"], r["kernel"], r["M"]) == (f, k, m)), "")
                     for m in range(1, 5)]
            print(f"| {f} | {k} | " + " | ".join(cells) + " |")
        print()

    best = {}  # (who, threads) -> best tokens/s
    info = {}
    for r in rows:
        if r.get("mode") != "generate":
            continue
        who = f"tensorzoo {r['weights']}" if r["framework"] == "tensorzoo" else f"pytorch {r.get('torch', '')} f32"
        key = (who, r["threads"])
        if r["tokens_per_s"] > best.get(key, 0):
            best[key] = r["tokens_per_s"]
            info[key] = r
    threads = sorted({t for _, t in best})
    peers = sorted({w for w, _ in best if w.startswith("pytorch")})
    summary = {"cpu": cpu_name(), "load_start": a.load_start, "load_end": a.load_end}
    print(f"Generation of 256 tokens, large GPT ({cpu_name()}); tokens/s, best of the rounds")
    header = "| threads | tz f32 | tz bf16 | tz int8 | " + " | ".join(peers) + \
        " | int8 / tz f32 | bf16 / tz f32 | " + " | ".join(f"int8 / {p}" for p in peers) + " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for t in threads:
        g = lambda w: best.get((w, t), 0.0)
        f32, bf, i8 = g("tensorzoo f32"), g("tensorzoo bf16"), g("tensorzoo int8")
        pt = [g(p) for p in peers]
        cells = [f"{f32:.0f}", f"{bf:.0f}", f"{i8:.0f}"] + [f"{x:.0f}" for x in pt]
        cells += [f"{i8 / f32:.2f}x" if f32 else "", f"{bf / f32:.2f}x" if f32 else ""]
        cells += [f"{i8 / x:.2f}x" if x else "" for x in pt]
        print(f"| {t} | " + " | ".join(cells) + " |")
        summary[f"t{t}"] = {"tz_f32": f32, "tz_bf16": bf, "tz_int8": i8,
                            "int8_over_tz_f32": i8 / f32 if f32 else None, "bf16_over_tz_f32": bf / f32 if f32 else None,
                            **{f"int8_over_{p.replace(' ', '_')}": (i8 / x if x else None) for p, x in zip(peers, pt)},
                            **{f"bf16_over_{p.replace(' ', '_')}": (bf / x if x else None) for p, x in zip(peers, pt)},
                            "rss_mb": {w: info[(w, t)].get("rss_mb") for w in
                                       ("tensorzoo f32", "tensorzoo bf16", "tensorzoo int8") if (w, t) in info}}
    one = summary.get("t1", {})
    targets = {"int8_3x_tz_f32_1t": (one.get("int8_over_tz_f32") or 0) >= 3.0}
    for p in peers:
        targets[f"int8_10x_{p.replace(' ', '_')}_1t"] = (one.get(f"int8_over_{p.replace(' ', '_')}") or 0) >= 10.0
    summary["targets"] = targets
    print()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
