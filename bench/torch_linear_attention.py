#!/usr/bin/python3
"""torch_linear_attention: the PyTorch twin of bench/linear_attention_step.cpp: one forward +
backward of decayed linear attention (layouts head, channel) or of the delta rule (layout
delta), f32, in two PyTorch forms:

  chunk      the chunked algorithm written in PyTorch ops, as flash-linear-attention's naive
             chunk references do: chunks of C = 64, cumulative log-decay b within a chunk,
             intra-chunk A = (q k^T) * exp(b_i - b_j) (per head; masked to -inf above the
             diagonal before exp) or (q * exp(b)) (k * exp(-b))^T (per key channel, as GLA's
             reference), the state carried by a loop over chunks;
  recurrent  the token-by-token loop S_t = diag(a_t) S_{t-1} + k_t^T v_t, o_t = q_t S_t.

For the delta rule: chunk is the WY form of flash-linear-attention's naive chunk reference,
with the unit lower-triangular (I + A) inverted by torch.linalg.solve_triangular (one call
for every chunk at once) rather than a loop over rows: W = (I + A)^-1 diag(beta) K, U0 =
(I + A)^-1 diag(beta) V, then per chunk U = U0 - W S, O = Q S + (Q K^T masked) U, S += K^T U;
recurrent is S_t = S_{t-1} + beta_t k_t^T (v_t - k_t S_{t-1}), o_t = q_t S_t.

  python3 bench/torch_linear_attention.py --threads N [--T 256,1024,4096] [--reps R]
      [--forms chunk,recurrent] [--recurrent-max-T 1024] [--layouts head,channel,delta]
  python3 bench/torch_linear_attention.py --selftest   (chunk == recurrent, in f64)

Same sizes, inputs, FLOP count, timing (least of --reps after a warm-up) and JSON fields as
the C++ program (impl "torch-<version>-<form>").
"""
import argparse
import json
import time

import torch

B, H, D, C = 8, 4, 64, 64


def chunk_form(q, k, v, g, C=C):
    Bq, Hq, T, Dk = q.shape
    Dv = v.shape[-1]
    N = T // C
    per_channel = g.dim() == 4
    qc = q.view(Bq, Hq, N, C, Dk)
    kc = k.view(Bq, Hq, N, C, Dk)
    vc = v.view(Bq, Hq, N, C, Dv)
    b = g.view(Bq, Hq, N, C, -1).cumsum(3)  # [B, H, N, C, 1 or Dk]
    bL = b[:, :, :, -1:, :]  # [B, H, N, 1, *]
    tril = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    if per_channel:
        A = (qc * b.exp()) @ (kc * (-b).exp()).transpose(-1, -2)
        A = A.masked_fill(~tril, 0.0)
    else:
        diff = b[..., 0].unsqueeze(-1) - b[..., 0].unsqueeze(-2)
        A = (qc @ kc.transpose(-1, -2)) * diff.masked_fill(~tril, float("-inf")).exp()
    o_intra = A @ vc
    q_hat = qc * b.exp()
    k_hat = kc * (bL - b).exp()
    S = q.new_zeros(Bq, Hq, Dk, Dv)
    inter = []
    # unbind, not q_hat[:, :, i]: the backward of N slices would write N full-size gradients
    # (quadratic in T); unbind's backward is one stack.
    decay = bL.transpose(-1, -2).exp().unbind(2)
    for qi, ki, vi, di in zip(q_hat.unbind(2), k_hat.unbind(2), vc.unbind(2), decay):
        inter.append(qi @ S)
        S = S * di + ki.transpose(-1, -2) @ vi
    o = o_intra + torch.stack(inter, 2)
    return o.reshape(Bq, Hq, T, Dv), S


def recurrent_form(q, k, v, g):
    Bq, Hq, T, Dk = q.shape
    S = q.new_zeros(Bq, Hq, Dk, v.shape[-1])
    outs = []
    a_all = g.exp()
    a_all = a_all[..., None, None] if g.dim() == 3 else a_all[..., :, None]  # [B, H, T, 1 or Dk, 1]
    for qt, kt, vt, at in zip(q.unbind(2), k.unbind(2), v.unbind(2), a_all.unbind(2)):
        S = S * at + kt[..., :, None] * vt[..., None, :]
        outs.append((qt[..., None, :] @ S)[..., 0, :])
    return torch.stack(outs, 2), S


def delta_chunk_form(q, k, v, beta, C=C):
    Bq, Hq, T, Dk = q.shape
    Dv = v.shape[-1]
    N = T // C
    qc, kc, vc = q.view(Bq, Hq, N, C, Dk), k.view(Bq, Hq, N, C, Dk), v.view(Bq, Hq, N, C, Dv)
    bc = beta.view(Bq, Hq, N, C, 1)
    strict = torch.ones(C, C, dtype=torch.bool).tril(-1)
    A = ((bc * kc) @ kc.transpose(-1, -2)).masked_fill(~strict, 0.0)
    eye = torch.eye(C, dtype=q.dtype)
    rhs = torch.cat([bc * kc, bc * vc], -1)
    wu = torch.linalg.solve_triangular(eye + A, rhs, upper=False, unitriangular=True)
    W, U0 = wu[..., :Dk], wu[..., Dk:]
    causal = torch.ones(C, C, dtype=torch.bool).tril()
    P = (qc @ kc.transpose(-1, -2)).masked_fill(~causal, 0.0)
    S = q.new_zeros(Bq, Hq, Dk, Dv)
    outs = []
    for qi, ki, wi, ui, pi in zip(qc.unbind(2), kc.unbind(2), W.unbind(2), U0.unbind(2), P.unbind(2)):
        u = ui - wi @ S
        outs.append(qi @ S + pi @ u)
        S = S + ki.transpose(-1, -2) @ u
    return torch.stack(outs, 2).reshape(Bq, Hq, T, Dv), S


def delta_recurrent_form(q, k, v, beta):
    Bq, Hq, T, Dk = q.shape
    S = q.new_zeros(Bq, Hq, Dk, v.shape[-1])
    outs = []
    for qt, kt, vt, bt in zip(q.unbind(2), k.unbind(2), v.unbind(2), beta.unbind(2)):
        u = bt[..., None] * (vt - (kt[..., None, :] @ S)[..., 0, :])
        S = S + kt[..., :, None] * u[..., None, :]
        outs.append((qt[..., None, :] @ S)[..., 0, :])
    return torch.stack(outs, 2), S


def inputs(T, layout, dtype=torch.float32, seed=1):
    gen = torch.Generator().manual_seed(seed)
    q = (torch.randn(B, H, T, D, generator=gen, dtype=dtype) / 8).requires_grad_()
    k = torch.randn(B, H, T, D, generator=gen, dtype=dtype)
    k = (k / k.norm(dim=-1, keepdim=True) if layout == "delta" else k / 8).requires_grad_()
    v = torch.randn(B, H, T, D, generator=gen, dtype=dtype).requires_grad_()
    if layout == "delta":  # beta uniform in [0.1, 0.9]
        g = (torch.rand(B, H, T, generator=gen, dtype=dtype) * 0.8 + 0.1).requires_grad_()
    else:
        gshape = (B, H, T) if layout == "head" else (B, H, T, D)
        g = (torch.rand(*gshape, generator=gen, dtype=dtype) * 0.09 - 0.1).requires_grad_()
    go = torch.randn(B, H, T, D, generator=gen, dtype=dtype)
    return q, k, v, g, go


FORMS = {False: (chunk_form, recurrent_form), True: (delta_chunk_form, delta_recurrent_form)}


def selftest():
    for layout in ("head", "channel", "delta"):
        q, k, v, g, _ = inputs(128, layout, torch.float64)
        chunk, recurrent = FORMS[layout == "delta"]
        oc, sc = chunk(q, k, v, g)
        orr, sr = recurrent(q, k, v, g)
        err = max(((oc - orr).abs().max() / orr.abs().max()).item(), ((sc - sr).abs().max() / sr.abs().max()).item())
        print(f"selftest {layout}: chunk vs recurrent max rel. error {err:.2e}")
        assert err < 1e-10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--T", default="256,1024,4096")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--forms", default="chunk,recurrent")
    ap.add_argument("--layouts", default="head,channel,delta")
    ap.add_argument("--recurrent-max-T", type=int, default=1024)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        selftest()
        return
    torch.set_num_threads(a.threads)
    ver = torch.__version__.split("+")[0]
    for layout in ("head", "channel", "delta"):
        if layout not in a.layouts:
            continue
        for form in a.forms.split(","):
            fn = FORMS[layout == "delta"][form != "chunk"]
            for T in [int(x) for x in a.T.split(",")]:
                if form == "recurrent" and T > a.recurrent_max_T:
                    continue
                q, k, v, g, go = inputs(T, layout)
                reps = a.reps if form == "chunk" else 1
                tot, fwd = [], []
                for r in range(reps + 1):
                    for t in (q, k, v, g):
                        t.grad = None
                    t0 = time.perf_counter()
                    o, _ = fn(q, k, v, g)
                    t1 = time.perf_counter()
                    o.backward(go)
                    t2 = time.perf_counter()
                    if r > 0:
                        tot.append((t2 - t0) * 1e3)
                        fwd.append((t1 - t0) * 1e3)
                tot.sort()
                fwd.sort()
                per_token = 2 * C * (4 * D) + 6 * D * D if layout == "delta" else 2 * C * (D + D) + 4 * D * D
                flop = 3.0 * B * H * T * per_token
                print(json.dumps({"impl": f"torch-{ver}-{form}", "layout": layout, "T": T, "threads": a.threads,
                                  "ms": round(tot[0], 3), "fwd_ms": round(fwd[0], 3),
                                  "gflop": round(flop * 1e-9, 4)}), flush=True)


if __name__ == "__main__":
    main()
