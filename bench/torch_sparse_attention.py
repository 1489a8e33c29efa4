#!/usr/bin/python3
"""torch_sparse_attention: the PyTorch twin of bench/sparse_attention.cpp --json: one forward +
backward of causal sparse attention, f32, B 1, H 4, D 64, in two PyTorch forms:

  dense    what a PyTorch 1.13 user writes: scores q k^T / sqrt(D) [B, H, T, T], masked_fill
           of the hidden pairs with -inf, softmax, times v; the boolean mask is built once,
           before the measurement;
  blocked  the block-local form (lucidrains' local-attention: queries in blocks of w attend to
           their block and the one before, keys gathered with unfold): [B, H, T/w, w, 2w]
           scores, the exact window masked inside; BigBird in the same spirit as its
           block-sparse implementations: each query block gathers its key blocks (window,
           global, random) and attends to them.

Patterns, as tensorzoo's (core/kernels/attention_layout.h), both causal:
  window   key j visible to query p iff 0 <= p - j < w (w = 256)
  bigbird  block size b 64; query block qb sees the key blocks tensorzoo's layout lists for it
           (one window block each side, one global block, 2 random blocks drawn by
           tensorzoo's seeded generator), read from the JSON `sparse_attention --bigbird-blocks`
           writes, so both frameworks compute the same function.

  python3 bench/torch_sparse_attention.py --impl dense|blocked --pattern window|bigbird --T 4096
          --threads N [--reps R] [--blocks FILE]   one JSON line
  python3 bench/torch_sparse_attention.py --selftest     blocked == dense, f64

Timing: least and median of --reps after one warm-up, and the least CPU time (the process's,
all threads: the work, which other processes on a shared machine inflate far less). Memory: the process's peak RSS (VmHWM)
above its RSS once the inputs and the mask exist, as the C++ program reports it; one
measurement per process, after one forward + backward at T 512 has paged in the code it runs
(the BigBird JSON must hold T 512 too).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

H, D, W, BLOCK = 4, 64, 256, 64
WARM_T = 512  # the size of the warm-up that pages in the code before the memory baseline


def status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return float(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---- masks -----------------------------------------------------------------------------
def window_mask(T, w):
    """[T, T] bool: 0 <= p - j < w."""
    d = torch.arange(T)[:, None] - torch.arange(T)[None, :]
    return (d >= 0) & (d < w)


def block_mask(blocks, T, b):
    """[H, T, T] bool from per-head key-block lists, causal."""
    nb = T // b
    m = torch.zeros(len(blocks), nb, nb, dtype=torch.bool)
    for h, rows in enumerate(blocks):
        for qb, kbs in enumerate(rows):
            m[h, qb, kbs] = True
    m = m.repeat_interleave(b, 1).repeat_interleave(b, 2)
    return m & torch.ones(T, T, dtype=torch.bool).tril()


# ---- the forms -------------------------------------------------------------------------
def dense(q, k, v, mask):
    s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    s = s.masked_fill(~mask, float("-inf"))
    return s.softmax(-1) @ v


def window_block_mask(T, w):
    """[T/w, w, 2w] bool: query i of block n sees key c of the window [(n-1) w, (n+1) w)."""
    nb = T // w
    i = torch.arange(w)[:, None]
    c = torch.arange(2 * w)[None, :]
    d = i + w - c  # p - j
    m = ((d >= 0) & (d < w)).expand(nb, w, 2 * w).clone()
    m[0, :, :w] = False  # block 0 has no previous block (its keys are padding)
    return m


def blocked_window(q, k, v, mask, w):
    B, Hh, T, Dd = q.shape
    nb = T // w
    qb = q.view(B, Hh, nb, w, Dd)
    # Keys of blocks n-1 and n for every n: pad one block in front, unfold windows of 2w
    # with step w -> [B, H, nb, D, 2w].
    kw = F.pad(k, (0, 0, w, 0)).unfold(2, 2 * w, w)
    vw = F.pad(v, (0, 0, w, 0)).unfold(2, 2 * w, w)
    s = (qb @ kw) * Dd**-0.5  # [B, H, nb, w, 2w]
    s = s.masked_fill(~mask, float("-inf"))
    return (s.softmax(-1) @ vw.transpose(-1, -2)).reshape(B, Hh, T, Dd)


def bigbird_gather(blocks, T, b):
    """Key-block indices [H, nb, K] (short lists padded with block 0) and the mask
    [H, nb, b, K b] (padding and causally hidden pairs False)."""
    nb = T // b
    K = max(len(kbs) for rows in blocks for kbs in rows)
    idx = torch.zeros(len(blocks), nb, K, dtype=torch.long)
    valid = torch.zeros(len(blocks), nb, K, dtype=torch.bool)
    for h, rows in enumerate(blocks):
        for qb, kbs in enumerate(rows):
            idx[h, qb, : len(kbs)] = torch.tensor(kbs)
            valid[h, qb, : len(kbs)] = True
    qpos = torch.arange(nb)[:, None] * b + torch.arange(b)[None, :]  # [nb, b]
    kpos = idx[..., None] * b + torch.arange(b)  # [H, nb, K, b]
    causal = kpos.reshape(len(blocks), nb, 1, K * b) <= qpos[None, :, :, None]
    mask = causal & valid.repeat_interleave(b, -1)[:, :, None, :]
    return idx, mask


def blocked_bigbird(q, k, v, idx, mask, b):
    B, Hh, T, Dd = q.shape
    nb, K = idx.shape[1], idx.shape[2]
    qb = q.view(B, Hh, nb, b, Dd)
    heads = torch.arange(Hh)[:, None, None]
    kg = k.view(B, Hh, nb, b, Dd)[:, heads, idx].reshape(B, Hh, nb, K * b, Dd)
    vg = v.view(B, Hh, nb, b, Dd)[:, heads, idx].reshape(B, Hh, nb, K * b, Dd)
    s = (qb @ kg.transpose(-1, -2)) * Dd**-0.5
    s = s.masked_fill(~mask, float("-inf"))
    return (s.softmax(-1) @ vg).reshape(B, Hh, T, Dd)


def make(impl, pattern, T, blocks):
    """The form as f(q, k, v) with its masks built now."""
    if pattern == "window":
        if impl == "dense":
            m = window_mask(T, W)
            return lambda q, k, v: dense(q, k, v, m)
        m = window_block_mask(T, W)
        return lambda q, k, v: blocked_window(q, k, v, m, W)
    if impl == "dense":
        m = block_mask(blocks, T, BLOCK)
        return lambda q, k, v: dense(q, k, v, m)
    idx, m = bigbird_gather(blocks, T, BLOCK)
    return lambda q, k, v: blocked_bigbird(q, k, v, idx, m, BLOCK)


def inputs(T, dtype=torch.float32, h=H, d=D):
    """q, k, v, g [1, h, T, d]: element n (flat) of tensor t is sin(1.3 n + t) cos(0.017 n + 2 t),
    computed in f64 as the C++ program does, so both frameworks see the same numbers."""
    n = torch.arange(h * T * d, dtype=torch.float64)
    q, k, v, g = ((torch.sin(1.3 * n + t) * torch.cos(0.017 * n + 2 * t)).to(dtype).view(1, h, T, d) for t in range(4))
    return q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), g


def selftest():
    torch.manual_seed(0)
    worst = 0.0
    for T, w in ((64, 16), (128, 32)):
        q, k, v, g = inputs(T, torch.float64, 3, 8)
        a = blocked_window(q, k, v, window_block_mask(T, w), w)
        r = dense(q, k, v, window_mask(T, w))
        worst = max(worst, ((a - r).abs().max() / r.abs().max()).item())
    for T, b in ((64, 8), (96, 16)):
        nb = T // b
        gen = torch.Generator().manual_seed(T)
        blocks = []  # per head: each query block its previous block, itself, block 0, a random earlier one
        for h in range(3):
            rows = []
            for qb in range(nb):
                r = int(torch.randint(0, qb + 1, (1,), generator=gen))
                rows.append(sorted({0, max(qb - 1, 0), qb, r}))
            blocks.append(rows)
        q, k, v, g = inputs(T, torch.float64, 3, 8)
        idx, m = bigbird_gather(blocks, T, b)
        a = blocked_bigbird(q, k, v, idx, m, b)
        r = dense(q, k, v, block_mask(blocks, T, b))
        worst = max(worst, ((a - r).abs().max() / r.abs().max()).item())
    print(f"selftest (torch {torch.__version__}): blocked vs dense masked, max rel. error {worst:.2e}")
    assert worst < 1e-12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=("dense", "blocked"))
    ap.add_argument("--pattern", choices=("window", "bigbird"))
    ap.add_argument("--T", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--blocks", help="JSON of `sparse_attention --bigbird-blocks` (bigbird only)")
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        selftest()
        return
    if a.T is None or a.impl is None or a.pattern is None:
        ap.error("--impl, --pattern and --T are required")
    if a.T % W:
        ap.error(f"--T must be a multiple of {W}")
    torch.set_num_threads(a.threads)
    blocks, lists = None, {}
    if a.pattern == "bigbird":
        if not a.blocks:
            ap.error("--pattern bigbird needs --blocks")
        lists = {int(e["T"]): e["blocks"] for e in (json.loads(l) for l in open(a.blocks) if l.strip())}
        for T in (a.T, WARM_T):
            if T not in lists:
                raise SystemExit(f"{a.blocks}: no block lists for T {T}")
        blocks = lists[a.T]
    # Page in the code this form runs (libtorch's kernels count to the RSS) on a small copy.
    wq, wk, wv, wg = inputs(WARM_T)
    make(a.impl, a.pattern, WARM_T, lists.get(WARM_T) if a.pattern == "bigbird" else None)(wq, wk, wv).backward(wg)
    del wq, wk, wv, wg
    f = make(a.impl, a.pattern, a.T, blocks)
    q, k, v, g = inputs(a.T)
    rss0 = status_mb("VmRSS:")
    tot, fwd, cpu = [], [], []
    for r in range(a.reps + 1):  # r = 0: warm-up
        for t in (q, k, v):
            t.grad = None
        t0, c0 = time.perf_counter(), time.process_time()
        o = f(q, k, v)
        t1 = time.perf_counter()
        o.backward(g)
        t2, c2 = time.perf_counter(), time.process_time()
        o_last = o.detach()
        del o
        if r > 0:
            tot.append((t2 - t0) * 1e3)
            fwd.append((t1 - t0) * 1e3)
            cpu.append((c2 - c0) * 1e3)
    tot.sort()
    ver = torch.__version__.split("+")[0]
    print(json.dumps({"impl": f"torch-{ver}-{a.impl}", "pattern": a.pattern, "T": a.T, "threads": a.threads,
                      "ms": round(tot[0], 3), "median_ms": round(tot[len(tot) // 2], 3), "cpu_ms": round(min(cpu), 3),
                      "fwd_ms": round(min(fwd), 3), "peak_mb": round(status_mb("VmHWM:") - rss0, 2),
                      "loss": float((o_last * g).double().sum()),
                      "dq_l1": float(q.grad.double().abs().sum())}), flush=True)


if __name__ == "__main__":
    main()
