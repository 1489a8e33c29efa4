#!/usr/bin/env python3
"""The report of bench/run_distributed_bench.sh: data-parallel scaling of the GPT step.

Reads the JSON lines of bench/distributed_step.cpp (one per run, tagged with "variant"),
keeps each variant's fastest run, and prints
  - the table: step time, tokens/s, against 1 rank x 2 threads (the efficiency), compute,
    time inside the reductions, exposed wait, and MPI_Allreduce alone on the gradient bytes;
  - the gradient bytes reduced per step and the ring's traffic per rank;
  - the estimate for N machines over 10 and 25 Gbit/s (docs/distributed.md):
        T_ar(N)   = n_b * 2 (N - 1) * alpha + 2 (N - 1) / N * S / (eta * link)
        exposed   = max(T_ar / n_b, T_ar - (n_b - 1) / n_b * T_bwd)     (overlapped buckets)
        E(N)      = T_c / (T_c + exposed)                                 (weak scaling)
    with T_c the measured step of one machine (1x2: compute + update), T_bwd = 2/3 of its
    forward + backward, S the gradient bytes, n_b the buckets, alpha the per-message latency
    and eta the share of the link TCP delivers (assumptions printed with the table); the last
    column puts machines 16 times faster than this one (T_c and T_bwd / 16) on the same links.
"""
import argparse
import json
import subprocess

ALPHA_S = 50e-6  # per message and ring step: TCP over Ethernet, switch included (assumption)
ETA = 0.9        # share of the link's bit rate a large TCP transfer reaches (assumption)


def cpu_name():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("--load-start", default="?")
    ap.add_argument("--load-end", default="?")
    ap.add_argument("--elapsed", default="?")
    a = ap.parse_args()
    best, probe = {}, {}
    for line in open(a.jsonl):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        v = r["variant"]
        if v not in best or r["step_ms"] < best[v]["step_ms"]:
            best[v] = r
        # The transport alone: its fastest round (a busy spell slows single calls the most).
        p = probe.setdefault(v, {"allreduce_ms": r["allreduce_ms"], "latency_us": r["latency_us"]})
        p["allreduce_ms"] = min(p["allreduce_ms"], r["allreduce_ms"])
        p["latency_us"] = min(p["latency_us"], r["latency_us"])
    for v, p in probe.items():
        best[v].update(p)
    order = ["1x2", "1x1", "2x1", "2x1 spin", "2x1 seq", "2x1 tcp", "2x1 det"]
    peer = best["1x2"]
    b = peer["batch"]
    print(f"CPU: {cpu_name()}; load average {a.load_start} at the start, {a.load_end} at the end; "
          f"{a.elapsed} s")
    print(f"model: GPT {peer['config']} ({peer['params'] / 1e6:.2f}M parameters), global batch {b} x T, "
          f"fastest of each configuration's rounds\n")
    print("| configuration | step ms | tokens/s | vs 1x2 | forward+backward ms | in reductions ms | "
          "exposed wait ms | update ms | allreduce alone ms (fastest round) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {"1x2": "1 rank x 2 threads", "1x1": "1 rank x 1 thread", "2x1": "2 ranks x 1 thread, shared memory",
             "2x1 spin": "2 x 1, shared memory, spinning reduction thread",
             "2x1 seq": "2 x 1, shared memory, reduce after backward", "2x1 tcp": "2 x 1, TCP loopback",
             "2x1 det": "2 x 1, TCP loopback, deterministic"}
    for v in order:
        if v not in best:
            continue
        r = best[v]
        ratio = r["tokens_per_s"] / peer["tokens_per_s"]
        red = f"{r['reduce_ms']:.1f}" if r["ranks"] > 1 else "-"
        wait = f"{r['wait_ms']:.1f}" if r["ranks"] > 1 else "-"
        alone = f"{r['allreduce_ms']:.1f}" if r["ranks"] > 1 else "-"
        print(f"| {names[v]} | {r['step_ms']:.1f} | {r['tokens_per_s']:.0f} | {ratio:.2f} | {r['compute_ms']:.1f} | "
              f"{red} | {wait} | {r['opt_ms']:.1f} | {alone} |")
    two = best.get("2x1")
    if two:
        one = best["1x1"]
        print(f"\nefficiency of 2 ranks x 1 thread against 1 rank x 2 threads: "
              f"{two['tokens_per_s'] / peer['tokens_per_s']:.2f}; against twice 1 rank x 1 thread: "
              f"{two['tokens_per_s'] / (2 * one['tokens_per_s']):.2f}")
        S = two["grad_bytes"]
        print(f"gradient bytes reduced per step and rank: {S / 1e6:.2f} MB in {two['buckets']} buckets "
              f"(ring allreduce traffic per rank 2 (N-1)/N S = {S / 1e6:.2f} MB at N = 2); "
              f"MPI_Allreduce latency (8 bytes): shared memory {two['latency_us']:.0f} us, "
              f"TCP loopback {best.get('2x1 tcp', two)['latency_us']:.0f} us")
    # The estimate for N machines, each one this machine at the full batch (weak scaling).
    t_c = peer["compute_ms"] + peer["opt_ms"]
    t_bwd = 2 / 3 * peer["compute_ms"]
    S = (two or peer)["grad_bytes"]
    nb = (two or {"buckets": 4})["buckets"]
    print(f"\nestimate: N machines like this one, batch {b} each (weak scaling), T_c = {t_c:.0f} ms, "
          f"T_bwd = {t_bwd:.0f} ms, S = {S / 1e6:.1f} MB, n_b = {nb}, alpha = {ALPHA_S * 1e6:.0f} us, eta = {ETA}")
    print("| machines | link | allreduce ms | exposed ms (overlapped) | efficiency | without overlap | "
          "machines 16x faster (T_c / 16) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for gbit in (10, 25):
        for n in (4, 8, 16):
            bw = gbit * 1e9 / 8 * ETA
            t_ar = (nb * 2 * (n - 1) * ALPHA_S + 2 * (n - 1) / n * S / bw) * 1e3
            exposed = max(t_ar / nb, t_ar - (nb - 1) / nb * t_bwd)
            fast = max(t_ar / nb, t_ar - (nb - 1) / nb * t_bwd / 16)
            print(f"| {n} | {gbit} Gbit/s | {t_ar:.1f} | {exposed:.1f} | {t_c / (t_c + exposed):.3f} | "
                  f"{t_c / (t_c + t_ar):.3f} | {t_c / 16 / (t_c / 16 + fast):.3f} |")


if __name__ == "__main__":
    main()
