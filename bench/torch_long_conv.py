#!/usr/bin/python3
"""torch_long_conv: the PyTorch twin of bench/long_conv_step.cpp: one forward + backward of the
causal long convolution y = irfft(rfft(u, 2L) * rfft(k, 2L))[:L] + D u, f32, B 8, C 256, with
torch.fft as safari's fftconv does it; autograd gives the backward.

  python3 bench/torch_long_conv.py --threads N [--L 1024,4096,16384] [--reps R]
  python3 bench/torch_long_conv.py --selftest   (the FFT form == the direct causal sum, f64)

Same sizes, inputs, timing (least of --reps after a warm-up) and JSON fields as the C++
program (impl "torch-<version>-fft").
"""
import argparse
import json
import time

import torch

B, C = 8, 256


def fftconv(u, k, D):
    L = u.shape[-1]
    n = 2 * L
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :L]
    return y + u * D[:, None]


def direct(u, k, D):
    L = u.shape[-1]
    y = torch.zeros_like(u)
    for j in range(L):  # lag j: y[t] += k[j] u[t - j]
        y[..., j:] += k[:, j, None] * u[..., : L - j]
    return y + u * D[:, None]


def inputs(L, dtype=torch.float32, b=B, c=C):
    gen = torch.Generator().manual_seed(1)
    u = torch.randn(b, c, L, generator=gen, dtype=dtype).requires_grad_()
    k = (torch.randn(c, L, generator=gen, dtype=dtype) / L**0.5).requires_grad_()
    D = torch.randn(c, generator=gen, dtype=dtype).requires_grad_()
    dy = torch.randn(b, c, L, generator=gen, dtype=dtype)
    return u, k, D, dy


def selftest():
    for L in (1, 7, 64, 100):
        u, k, D, _ = inputs(L, torch.float64, 2, 3)
        a, b = fftconv(u, k, D), direct(u, k, D)
        err = ((a - b).abs().max() / b.abs().max()).item()
        print(f"selftest L {L}: fft vs direct max rel. error {err:.2e}")
        assert err < 1e-10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--L", default="1024,4096,16384")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        selftest()
        return
    torch.set_num_threads(a.threads)
    ver = torch.__version__.split("+")[0]
    for L in [int(x) for x in a.L.split(",")]:
        u, k, D, dy = inputs(L)
        tot, fwd = [], []
        for r in range(a.reps + 1):
            for t in (u, k, D):
                t.grad = None
            t0 = time.perf_counter()
            y = fftconv(u, k, D)
            t1 = time.perf_counter()
            y.backward(dy)
            t2 = time.perf_counter()
            if r > 0:
                tot.append((t2 - t0) * 1e3)
                fwd.append((t1 - t0) * 1e3)
        print(json.dumps({"impl": f"torch-{ver}-fft", "L": L, "threads": a.threads, "ms": round(min(tot), 3),
                          "fwd_ms": round(min(fwd), 3)}), flush=True)


if __name__ == "__main__":
    main()
