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

For TTT-Linear (layout ttt; nn/linear_rnn/ttt_inner.h has the equations): chunk is the dual
form over mini-batches of b = 16, as the paper's reference writes it (a loop over
mini-batches, each one's gradients at its start weights, never forming a per-token W);
recurrent is the primal form, which applies W_t = W_{t-1} - eta_t k_t^T g_t token by token.
The outer gradient reaches q, k, v, eta, the initial W0, b0 and the LayerNorm's weights.

  python3 bench/torch_linear_attention.py --threads N [--T 256,1024,4096] [--reps R]
      [--forms chunk,recurrent] [--recurrent-max-T 1024] [--layouts head,channel,delta,ttt]
  python3 bench/torch_linear_attention.py --selftest   (chunk == recurrent, in f64)

Same sizes, inputs, FLOP count, timing (least of --reps after a warm-up) and JSON fields as
the C++ program (impl "torch-<version>-<form>").
"""
import argparse
import json
import time

import torch

B, H, D, C = 8, 4, 64, 64
MB = 16  # TTT's mini-batch


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


def ttt_ln(z, w, b, eps=1e-6):
    zc = z - z.mean(-1, keepdim=True)
    inv = torch.rsqrt((zc * zc).mean(-1, keepdim=True) + eps)
    zh = zc * inv
    return zh * w + b, zh, inv


def ttt_grad(k, v, W, b, lw, lb):
    """g = the gradient at Z = k W + b of |k + LN(Z) - v|^2 (the LN backward written out)."""
    y, zh, inv = ttt_ln(k @ W + b, lw, lb)
    ge = 2 * (y + k - v) * lw
    return inv * (ge - ge.mean(-1, keepdim=True) - zh * (ge * zh).mean(-1, keepdim=True))


def ttt_dual_form(q, k, v, w):
    eta, W0, b0, lw, lb = w
    W, b = W0.expand(q.shape[0], -1, -1, -1), b0.expand(q.shape[0], -1, -1, -1)
    causal = torch.ones(MB, MB, dtype=torch.bool).tril()
    outs = []
    # split, not a slice per mini-batch: one backward node for all pieces (slices' backward
    # would allocate a whole-sequence gradient each, quadratic in T)
    for qs, ks, vs, es in zip(q.split(MB, 2), k.split(MB, 2), v.split(MB, 2), eta.split(MB, 2)):
        G = es * ttt_grad(ks, vs, W, b, lw, lb)
        z = qs @ W + b - (qs @ ks.transpose(-1, -2)).masked_fill(~causal, 0.0) @ G - G.cumsum(2)
        W = W - ks.transpose(-1, -2) @ G
        b = b - G.sum(2, keepdim=True)
        outs.append(qs + ttt_ln(z, lw, lb)[0])
    return torch.cat(outs, 2), W


def ttt_primal_form(q, k, v, w):
    eta, W0, b0, lw, lb = w
    W, b = W0.expand(q.shape[0], -1, -1, -1), b0.expand(q.shape[0], -1, -1, -1)
    outs = []
    for qs, ks, vs, es in zip(q.split(MB, 2), k.split(MB, 2), v.split(MB, 2), eta.split(MB, 2)):
        g = ttt_grad(ks, vs, W, b, lw, lb)  # at the mini-batch's start
        for qt, kt, gt, et in zip(qs.split(1, 2), ks.split(1, 2), g.split(1, 2), es.split(1, 2)):
            W = W - et * (kt.transpose(-1, -2) @ gt)
            b = b - et * gt
            outs.append(qt + ttt_ln(qt @ W + b, lw, lb)[0])
    return torch.cat(outs, 2), W


def inputs(T, layout, dtype=torch.float32, seed=1):
    gen = torch.Generator().manual_seed(seed)
    if layout == "ttt":  # q, k, v ~ N(0, 1); eta uniform in [0, 1/D]; W0 ~ N(0, 0.02^2)
        q, k, v = (torch.randn(B, H, T, D, generator=gen, dtype=dtype).requires_grad_() for _ in range(3))
        w = (torch.rand(B, H, T, 1, generator=gen, dtype=dtype) / D, torch.randn(1, H, D, D, generator=gen, dtype=dtype)
             * 0.02, torch.zeros(1, H, 1, D, dtype=dtype), torch.ones(1, H, 1, D, dtype=dtype),
             torch.zeros(1, H, 1, D, dtype=dtype))
        go = torch.randn(B, H, T, D, generator=gen, dtype=dtype)
        return q, k, v, tuple(t.requires_grad_() for t in w), go
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


FORMS = {"head": (chunk_form, recurrent_form), "channel": (chunk_form, recurrent_form),
         "delta": (delta_chunk_form, delta_recurrent_form), "ttt": (ttt_dual_form, ttt_primal_form)}
LAYOUTS = ("head", "channel", "delta", "ttt")


def per_token_flop(layout):
    """The matrix products of the chunked algorithm per token and head (triangles not halved)."""
    if layout == "delta":
        return 2 * C * (4 * D) + 6 * D * D
    if layout == "ttt":  # k W0, q W, k^T G; q k^T and its product with G, over a mini-batch
        return 6 * D * D + 4 * MB * D
    return 2 * C * (D + D) + 4 * D * D


def leaves(q, k, v, g):
    return (q, k, v) + (g if isinstance(g, tuple) else (g,))


def selftest():
    for layout in LAYOUTS:
        q, k, v, g, _ = inputs(128, layout, torch.float64)
        chunk, recurrent = FORMS[layout]
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
    ap.add_argument("--layouts", default="head,channel,delta,ttt")
    ap.add_argument("--recurrent-max-T", type=int, default=1024)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        selftest()
        return
    torch.set_num_threads(a.threads)
    ver = torch.__version__.split("+")[0]
    for layout in LAYOUTS:
        if layout not in a.layouts.split(","):
            continue
        for form in a.forms.split(","):
            fn = FORMS[layout][form != "chunk"]
            for T in [int(x) for x in a.T.split(",")]:
                if form == "recurrent" and T > a.recurrent_max_T:
                    continue
                q, k, v, g, go = inputs(T, layout)
                reps = a.reps if form == "chunk" else 1
                tot, fwd = [], []
                for r in range(reps + 1):
                    for t in leaves(q, k, v, g):
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
                flop = 3.0 * B * H * T * per_token_flop(layout)
                print(json.dumps({"impl": f"torch-{ver}-{form}", "layout": layout, "T": T, "threads": a.threads,
                                  "ms": round(tot[0], 3), "fwd_ms": round(fwd[0], 3),
                                  "gflop": round(flop * 1e-9, 4)}), flush=True)


if __name__ == "__main__":
    main()
