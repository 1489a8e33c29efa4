#!/usr/bin/python3
"""lm_throughput_report: the tables of bench/run_lm_bench.sh from bench/lm_throughput's JSON
lines: training tokens/s per model and T with the ratio to tensorzoo's GPT (where each
model overtakes it), and decoding ms/token per history length with its growth.

  python3 bench/lm_throughput_report.py build-bench/lm_throughput.jsonl
"""
import json
import sys

from linear_attention_bench_report import cpu_name


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
    models = list(dict.fromkeys(r["model"] for r in rows))
    print(f"CPU: {cpu_name()}; d 256, 4 layers, 4 heads, bytes; least of the reps\n")
    for n in sorted({r["threads"] for r in rows}):
        train = {(r["model"], r["T"]): r for r in rows if r["what"] == "train" and r["threads"] == n}
        Ts = sorted({T for _, T in train})
        print(f"Training (forward + backward), tokens/s, {n} thread(s); x = ratio to gpt\n")
        print("| model |" + "".join(f" T {T} |" for T in Ts))
        print("|---|" + "---:|" * len(Ts))
        for m in models:
            cells = []
            for T in Ts:
                r, g = train.get((m, T)), train.get(("gpt", T))
                cells.append(f" {r['tokens_per_s']:.0f} ({r['tokens_per_s'] / g['tokens_per_s']:.2f}x) |"
                             if r and g else " - |")
            print(f"| {m} |" + "".join(cells))
        decode = {(r["model"], r["history"]): r for r in rows if r["what"] == "decode" and r["threads"] == n}
        Hs = sorted({H for _, H in decode})
        if Hs:
            print(f"\nDecoding, ms/token after a history of H tokens, {n} thread(s); growth = last / first\n")
            print("| model |" + "".join(f" H {H} |" for H in Hs) + " growth |")
            print("|---|" + "---:|" * (len(Hs) + 1))
            for m in models:
                v = [decode.get((m, H)) for H in Hs]
                cells = "".join(f" {r['ms_per_token']:.3f} |" if r else " - |" for r in v)
                growth = f" {v[-1]['ms_per_token'] / v[0]['ms_per_token']:.2f}x |" if v[0] and v[-1] else " - |"
                print(f"| {m} |" + cells + growth)
        print()


if __name__ == "__main__":
    main()
