#!/usr/bin/env python3
"""Markdown table of bench/run_scan_bench.sh's JSON lines: per T and thread count,
tensorzoo's ms (forward + backward), each PyTorch's ms and its ratio to tensorzoo, and the
peak RSS of each process."""
import argparse
import json
from collections import defaultdict


def main():
    p = argparse.ArgumentParser()
    p.add_argument("jsonl")
    p.add_argument("--cpu", default="?")
    p.add_argument("--load", default="?")
    a = p.parse_args()
    rows = [json.loads(l) for l in open(a.jsonl) if l.strip()]
    by = defaultdict(dict)
    peers = []
    for r in rows:
        by[(r["T"], r["threads"])][r["framework"]] = r
        if r["framework"] != "tensorzoo" and r["framework"] not in peers:
            peers.append(r["framework"])
    print(f"selective scan fwd+bwd, f32, B 8, D 512, N 16 -- CPU: {a.cpu}; load average {a.load} "
          "(machine shared with other jobs)\n")
    head = "| T | threads | tensorzoo ms (fwd) | tz peak RSS MB |"
    for p_ in peers:
        head += f" {p_} ms (fwd) | ratio | peak RSS MB |"
    print(head)
    print("|" + "---|" * (4 + 3 * len(peers)))
    for (T, th) in sorted(by):
        d = by[(T, th)]
        tz = d.get("tensorzoo")
        line = f"| {T} | {th} | " + (f"{tz['ms']:.1f} ({tz['ms_fwd']:.1f}) | {tz['peak_rss_mb']:.0f} |" if tz else "- | - |")
        for p_ in peers:
            r = d.get(p_)
            if r and tz:
                line += f" {r['ms']:.0f} ({r['ms_fwd']:.0f}) | {r['ms'] / tz['ms']:.0f}x | {r['peak_rss_mb']:.0f} |"
            else:
                line += " not run | | |"
        print(line)


if __name__ == "__main__":
    main()
