#!/usr/bin/env python3
"""The peer of bench/scan_bench.cpp: Mamba's reference algorithm for the selective scan
(selective_scan_ref of the Mamba paper's code, arXiv:2312.00752: Abar and Bbar u
materialised as [B, D, T, N] by einsum, then a loop over T of PyTorch ops), written here,
forward + backward in f32 through autograd, at one size per process (the peak RSS is this
size's). Prints one JSON line like scan_bench.

Two ways to take the per-step slices of the [B, D, T, N] tensors:
  index   deltaA[:, :, i] in the loop, as Mamba's code does. Autograd gives every slice a
          gradient the size of the whole tensor, so the backward grows as T^2.
  unbind  the same algorithm with the slices taken once by unbind, whose backward is one
          stack: linear in T, the fair peer at long T.

    python3 bench/torch_selective_scan.py --T 1024 [--B 8 --D 512 --N 16 --threads 2 --reps 3]
                                          [--slicing index|unbind]
    python3 bench/torch_selective_scan.py --selftest   # both against a closed form, tiny
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F


def selective_scan_ref(u, delta, A, B, C, D, z, slicing="index"):
    """u, delta, z [b, d, l]; A [d, n]; B, C [b, n, l]; D [d] -> out [b, d, l]."""
    b, d, l = u.shape
    deltaA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    deltaB_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    if slicing == "unbind":  # one op per tensor, whose backward is one stack
        dA, dBu, Cs = deltaA.unbind(2), deltaB_u.unbind(2), C.unbind(2)
    else:  # Mamba's code: one select per step, each with a whole-tensor gradient
        dA, dBu, Cs = ([t[:, :, i] for i in range(l)] for t in (deltaA, deltaB_u, C))
    x = u.new_zeros((b, d, A.shape[1]))
    ys = []
    for i in range(l):
        x = dA[i] * x + dBu[i]
        ys.append(torch.einsum("bdn,bn->bd", x, Cs[i]))
    y = torch.stack(ys, dim=2)
    out = y + u * D[:, None]
    return out * F.silu(z)


def selftest():
    torch.manual_seed(0)
    b, d, n, l = 2, 3, 4, 5
    u, z = torch.randn(b, d, l, dtype=torch.float64), torch.randn(b, d, l, dtype=torch.float64)
    delta = torch.rand(b, d, l, dtype=torch.float64)
    A = -torch.rand(d, n, dtype=torch.float64)
    B, C = torch.randn(b, n, l, dtype=torch.float64), torch.randn(b, n, l, dtype=torch.float64)
    D = torch.randn(d, dtype=torch.float64)
    outs = [selective_scan_ref(u, delta, A, B, C, D, z, s) for s in ("index", "unbind")]
    out = outs[0]
    # closed form: h_t = sum_{s<=t} exp(A sum_{s<r<=t} delta_r) delta_s B_s u_s
    cum = torch.cumsum(delta, -1)  # [b, d, l]
    want = torch.zeros_like(out)
    for t in range(l):
        for s in range(t + 1):
            decay = torch.exp(A[None] * (cum[:, :, t] - cum[:, :, s])[..., None])  # [b, d, n]
            h = decay * (delta[:, :, s] * u[:, :, s])[..., None] * B[:, None, :, s]
            want[:, :, t] += (h * C[:, None, :, t]).sum(-1)
    want = (want + u * D[:, None]) * F.silu(z)
    err = max((o - want).abs().max().item() for o in outs)
    assert err < 1e-12, err
    print(f"torch_selective_scan selftest ok (torch {torch.__version__}), max error {err:.1e}")


def main():
    p = argparse.ArgumentParser()
    for k, v in [("B", 8), ("T", 1024), ("D", 512), ("N", 16), ("threads", 1), ("reps", 3)]:
        p.add_argument(f"--{k}", type=int, default=v)
    p.add_argument("--slicing", choices=["index", "unbind"], default="index")
    p.add_argument("--selftest", action="store_true")
    a = p.parse_args()
    if a.selftest:
        return selftest()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    b, d, n, l = a.B, a.D, a.N, a.T
    u = torch.randn(b, d, l, requires_grad=True)
    delta = F.softplus(torch.randn(b, d, l) - 4.0).requires_grad_()
    A = (-torch.arange(1, n + 1, dtype=torch.float32)).repeat(d, 1).requires_grad_()
    B = torch.randn(b, n, l, requires_grad=True)
    C = torch.randn(b, n, l, requires_grad=True)
    D = torch.ones(d, requires_grad=True)
    z = torch.randn(b, d, l, requires_grad=True)
    gy = torch.randn(b, d, l)
    total, fwd = [], []
    for r in range(a.reps + 1):  # the first run warms up
        t0 = time.perf_counter()
        out = selective_scan_ref(u, delta, A, B, C, D, z, a.slicing)
        tf = time.perf_counter() - t0
        (out * gy).sum().backward()
        tt = time.perf_counter() - t0
        if r > 0:
            total.append(tt * 1e3)
            fwd.append(tf * 1e3)
        for t in (u, delta, A, B, C, D, z):
            t.grad = None
    med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else sum(sorted(v)[len(v) // 2 - 1 : len(v) // 2 + 1]) / 2
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"framework": f"torch {torch.__version__} ({a.slicing})", "B": b, "T": l, "D": d, "N": n,
                      "threads": a.threads, "ms": round(med(total), 2), "ms_fwd": round(med(fwd), 2),
                      "peak_rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    main()
