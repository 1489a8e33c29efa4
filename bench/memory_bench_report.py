#!/usr/bin/env python3
"""memory_bench_report.py: the tables and JSON line of bench/run_memory_bench.sh, from the raw
JSON lines of its runs (one per measurement, memory_step.cpp / torch_memory_step.py).

    bench/memory_bench_report.py build-bench/memory_bench.jsonl [--cpu NAME] [--cores N]
                                 [--load-start "..."] [--load-end "..."] [--elapsed S]

Each framework's best median over the rounds and thread configurations. Prints the training
table (tokens/s of the plain model and of Transformer-XL, their ratio; the target for
tensorzoo is TXL / plain >= 0.6), the decoding table (ms per token after each history, TXL
against the plain KV cache), and one JSON line of every ratio and whether each target is met.
"""
import argparse
import json
import sys

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("jsonl", help="raw runs, one JSON object per line")
ap.add_argument("--cpu", default="?", help="CPU name (/proc/cpuinfo)")
ap.add_argument("--cores", default="?", help="cores the machine shows")
ap.add_argument("--load-start", default="?", help="load average when the runs started")
ap.add_argument("--load-end", default="?", help="load average when they ended")
ap.add_argument("--elapsed", default="?", help="seconds the runs took")
args = ap.parse_args()
try:
    runs = [json.loads(l) for l in open(args.jsonl) if l.strip()]
except (OSError, json.JSONDecodeError) as e:
    sys.exit(f"memory_bench_report: cannot read the runs in {args.jsonl}: {e}")
if not any(r.get("framework") == "tensorzoo" for r in runs):
    sys.exit(f"memory_bench_report: {args.jsonl} holds no tensorzoo run; expected the raw output of "
             "bench/run_memory_bench.sh")


def fw_name(r):
    return "tensorzoo" if r["framework"] == "tensorzoo" else f"torch {r['torch']}"


fws = ["tensorzoo"] + sorted({fw_name(r) for r in runs if r["framework"] == "pytorch"})
attn = {fw_name(r): r.get("attn") for r in runs if r["framework"] == "pytorch"}


def best(fw, mode, mem, history=0):
    c = [r for r in runs if fw_name(r) == fw and r["mode"] == mode and r["mem"] == mem and r["history"] == history]
    return min(c, key=lambda r: r["median_ms"]) if c else None


params = {r["params"] for r in runs}
threads = sorted({r["threads"] for r in runs})
print(f"## Segment memory (Transformer-XL) benchmark: {args.cpu} ({args.cores} cores shown), "
      f"threads {', '.join(map(str, threads))}")
print(f"PyTorch: {', '.join(f'{f} ({attn[f]} attention)' for f in fws[1:]) or 'none'}; "
      f"load average at start {args.load_start}, at end {args.load_end}; {args.elapsed} s")
print(f"model: V 256, C 256, L 4, H 4, NoPE, pre-LN, GELU MLP x4, tied head; T = context = 256; "
      f"parameter counts equal in every framework: {'yes' if len(params) == 1 else 'NO ' + str(sorted(params))}\n")

ratios, targets = {}, {}
print("### training step (batch 8, one segment of T = 256; AdamW)")
print("| framework | plain ms/step | plain tok/s | TXL (M = 256) ms/step | TXL tok/s | TXL GFLOP/s | TXL / plain | "
      "tz / this (plain) | tz / this (TXL) | OMP cfg (plain/TXL) |")
print("|---|---|---|---|---|---|---|---|---|---|")
tz0, tzm = best("tensorzoo", "train", 0), best("tensorzoo", "train", 256)
for fw in fws:
    p, m = best(fw, "train", 0), best(fw, "train", 256)
    if not p or not m:
        print(f"| {fw} | missing runs | | | | | | | | |")
        continue
    key = fw.replace(" ", "_")
    ratios[f"{key}_train_txl_over_plain"] = round(m["tokens_per_s"] / p["tokens_per_s"], 3)
    vs = ""
    if fw != "tensorzoo" and tz0 and tzm:
        ratios[f"tz_over_{key}_train_plain"] = round(tz0["tokens_per_s"] / p["tokens_per_s"], 3)
        ratios[f"tz_over_{key}_train_txl"] = round(tzm["tokens_per_s"] / m["tokens_per_s"], 3)
        vs = f"{ratios[f'tz_over_{key}_train_plain']:.2f}x | {ratios[f'tz_over_{key}_train_txl']:.2f}x"
    else:
        vs = " | "
    print(f"| {fw} | {p['median_ms']:.0f} | {p['tokens_per_s']:.0f} | {m['median_ms']:.0f} | {m['tokens_per_s']:.0f} | "
          f"{m['gflops']:.1f} | **{ratios[f'{key}_train_txl_over_plain']:.2f}** | {vs} | "
          f"{p['variant']}/{m['variant']} |")
if "tensorzoo_train_txl_over_plain" in ratios:
    targets["tz_train_txl_over_plain_ge_0.6"] = ratios["tensorzoo_train_txl_over_plain"] >= 0.6
print()

histories = sorted({r["history"] for r in runs if r["mode"] == "decode"})
if histories:
    print("### decoding (batch 1, greedy): ms per token after a history of H tokens")
    print("TXL = M 256 segment memory, a step sees <= 512 keys; plain = KV cache over the whole history. "
          "'plain / TXL' > 1: memory decodes faster.")
    head = "| H |"
    for fw in fws:
        head += f" {fw} TXL | {fw} plain | {fw} plain / TXL |"
    head += "".join(f" tz / {fw} (TXL) | tz / {fw} (plain) |" for fw in fws[1:])
    print(head)
    print("|---" * (1 + 3 * len(fws) + 2 * (len(fws) - 1)) + "|")
    for H in histories:
        row = f"| {H} |"
        cell = {}
        for fw in fws:
            t, p = best(fw, "decode", 256, H), best(fw, "decode", 0, H)
            cell[fw] = (t, p)
            ts = f"{t['ms_per_token']:.2f}" if t else "-"
            ps = f"{p['ms_per_token']:.2f}" if p else "-"
            rs = ""
            if t and p:
                key = fw.replace(" ", "_")
                ratios[f"{key}_decode_{H}_plain_over_txl"] = round(p["ms_per_token"] / t["ms_per_token"], 3)
                rs = f"{ratios[f'{key}_decode_{H}_plain_over_txl']:.2f}x"
            row += f" {ts} | {ps} | {rs} |"
        for fw in fws[1:]:
            for i, kind in ((0, "txl"), (1, "plain")):
                z, o = cell["tensorzoo"][i], cell[fw][i]
                if z and o:
                    v = round(o["ms_per_token"] / z["ms_per_token"], 3)
                    ratios[f"tz_over_{fw.replace(' ', '_')}_decode_{H}_{kind}"] = v
                    row += f" {v:.2f}x |"
                else:
                    row += " - |"
        print(row)
    print()
    first, last = best("tensorzoo", "decode", 256, histories[0]), best("tensorzoo", "decode", 256, histories[-1])
    if first and last and len(histories) > 1:
        growth = round(last["ms_per_token"] / first["ms_per_token"], 3)
        ratios[f"tensorzoo_txl_decode_{histories[-1]}_over_{histories[0]}"] = growth
        # flat: 16x the history costs TXL at most 25% more per token (the plain cache grows with it)
        targets["tz_txl_decode_flat_in_history"] = growth <= 1.25
        print(f"tensorzoo TXL ms/token at H = {histories[-1]} over H = {histories[0]}: {growth:.2f}x "
              "(flat = about 1)\n")

met = sum(targets.values())
print(f"targets met: {met}/{len(targets)}; not met: {', '.join(k for k, v in targets.items() if not v) or 'none'}\n")
print(json.dumps({"bench": "memory_step_vs_torch", "cpu": args.cpu, "torch": fws[1:], "ratios": ratios,
                  "params_equal": len(params) == 1, "targets": targets, "targets_met": f"{met}/{len(targets)}"}))
