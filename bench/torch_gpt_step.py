#!/usr/bin/python3
"""torch_gpt_step: the PyTorch twin of bench/gpt_step.cpp (same model shapes, same modes,
same JSON fields, same FLOP formula). Run with Debian's python3-torch (1.13, CPU):

  /usr/bin/python3 bench/torch_gpt_step.py --config small|large --threads N
      --mode train|forward|generate|memory [--T T] [--batch B] [--reps R] [--warmup W]
      [--gen-tokens 256] [--json]

Model: byte vocabulary V = 256, nn.Embedding for tokens and learned positions, pre-LayerNorm
blocks with one fused qkv nn.Linear, causal attention written out as
softmax(Q K^T / sqrt(D) + mask) V (torch 1.13 has no F.scaled_dot_product_attention),
GELU (exact erf, as tensorzoo's "gelu") MLP x4, final LayerNorm, head tied to the token
embedding, torch.optim.AdamW with GPT-2 decay groups (matrices decayed; biases, norms and
embeddings not), as tensorzoo's optim::decay_groups. Context = max(T, prompt + gen_tokens).

PyTorch gets its best settings: torch.set_num_threads(N); inference_mode for forward and
generation; the runner also tries OMP_WAIT_POLICY=PASSIVE / OMP_NUM_THREADS=N and keeps the
best. Generation uses a preallocated KV cache (the same algorithm as tensorzoo's), eager.

FLOPs per token (see gpt_step.cpp): N_mm = L*12*C^2 + V*C; fwd = 2*N_mm + 4*L*T*C (full
T x T attention counted); train = 3*fwd. Elementwise work is not counted.
"""
import argparse
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return float(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, cache=None):
        B, T, C = x.shape
        H = self.heads
        D = C // H
        q, k, v = self.qkv(x).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # each [B, H, T, D]
        start = 0
        if cache is not None:
            start = cache["length"]
            cache["k"][:, :, start:start + T] = k
            cache["v"][:, :, start:start + T] = v
            k = cache["k"][:, :, :start + T]
            v = cache["v"][:, :, :start + T]
        S = k.shape[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))  # [B, H, T, S]
        if T > 1:  # query i sits at start + i and sees keys j <= start + i
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).triu(start + 1)
            att = att.masked_fill(mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.out(y)


class Block(nn.Module):
    def __init__(self, dim, heads, mult):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, mult * dim)
        self.proj = nn.Linear(mult * dim, dim)

    def forward(self, x, cache=None):
        x = x + self.attn(self.norm1(x), cache)
        return x + self.proj(F.gelu(self.fc(self.norm2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, dim, depth, heads, context, mult=4):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos_emb = nn.Embedding(context, dim)
        self.layers = nn.ModuleList([Block(dim, heads, mult) for _ in range(depth)])
        self.norm_f = nn.LayerNorm(dim)
        self.dim, self.heads, self.depth = dim, heads, depth
        for name, p in self.named_parameters():  # GPT-2 style init (speed does not depend on it)
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * depth) if name.endswith(("out.weight", "proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids, caches=None):
        B, T = ids.shape
        start = caches[0]["length"] if caches else 0
        pos = torch.arange(start, start + T, device=ids.device)
        h = self.tok_emb(ids) + self.pos_emb(pos)
        for i, layer in enumerate(self.layers):
            h = layer(h, caches[i] if caches else None)
        if caches:
            for c in caches:
                c["length"] += T
        return F.linear(self.norm_f(h), self.tok_emb.weight)  # tied head

    def loss(self, ids, targets):
        logits = self(ids)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))

    def make_caches(self, batch, capacity):
        D = self.dim // self.heads
        return [{"k": torch.empty(batch, self.heads, capacity, D),
                 "v": torch.empty(batch, self.heads, capacity, D), "length": 0}
                for _ in range(self.depth)]


@torch.inference_mode()
def generate(model, prompt, new_tokens):
    total = len(prompt) + new_tokens
    caches = model.make_caches(1, total)
    logits = model(torch.tensor([prompt], dtype=torch.long), caches)
    out = []
    for pos in range(len(prompt), total):
        token = int(logits[0, -1].argmax())  # greedy, as temperature 0
        out.append(token)
        if pos + 1 == total:
            break
        logits = model(torch.tensor([[token]], dtype=torch.long), caches)
    return out


def decay_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "emb" in name else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=["small", "large"], default="small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", choices=["train", "forward", "generate", "memory"], default="train")
    ap.add_argument("--T", type=int, default=0)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--gen-tokens", type=int, default=256)
    ap.add_argument("--json", action="store_true")  # the output is always one JSON object
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    if a.config == "small":
        C, L, H, T, B = 256, 4, 4, 256, 8
    else:
        C, L, H, T, B = 512, 6, 8, 512, 4
    if a.mode == "memory":
        B = 1
    if a.T > 0:
        T = a.T
    if a.batch > 0:
        B = a.batch
    V, prompt_len = 256, 16
    context = max(T, prompt_len + a.gen_tokens)

    torch.manual_seed(1234)
    model = GPT(V, C, L, H, context)
    params = sum(p.numel() for p in model.parameters())

    g = torch.Generator().manual_seed(42)
    seq = torch.randint(0, V, (B, T + 1), generator=g)
    ids, targets = seq[:, :T].contiguous(), seq[:, 1:].contiguous()

    n_mm = L * 12 * C * C + V * C
    fwd_per_token = 2 * n_mm + 4 * L * T * C
    tokens = B * T
    work_tokens = tokens
    times, check = [], 0.0
    rss_before = status_mb("VmRSS:")

    if a.mode in ("train", "memory"):
        model.train()
        opt = torch.optim.AdamW(decay_groups(model, 0.1), lr=3e-4) if a.mode == "train" else None
        total = 1 if a.mode == "memory" else a.warmup + a.reps
        for i in range(total):
            t0 = time.perf_counter()
            if opt:
                opt.zero_grad(set_to_none=True)
            loss = model.loss(ids, targets)
            loss.backward()
            if opt:
                opt.step()
            s = time.perf_counter() - t0
            if i == 0:
                check = loss.item()
            if a.mode == "memory" or i >= a.warmup:
                times.append(s)
        flops = 3 * fwd_per_token * tokens
    elif a.mode == "forward":
        model.eval()
        with torch.inference_mode():
            for i in range(a.warmup + a.reps):
                t0 = time.perf_counter()
                logits = model(ids)
                s = time.perf_counter() - t0
                if i == 0:
                    check = logits.reshape(-1)[0].item()
                if i >= a.warmup:
                    times.append(s)
        flops = fwd_per_token * tokens
    else:
        model.eval()
        pg = torch.Generator().manual_seed(7)
        prompt = torch.randint(0, V, (prompt_len,), generator=pg).tolist()
        for i in range(a.warmup + a.reps):
            t0 = time.perf_counter()
            out = generate(model, prompt, a.gen_tokens)
            s = time.perf_counter() - t0
            if i == 0:
                check = float(len(out))
            if i >= a.warmup:
                times.append(s)
        work_tokens = a.gen_tokens
        flops = sum(2 * n_mm + 4 * L * (prompt_len + i) * C for i in range(a.gen_tokens))
        flops += 2 * n_mm * prompt_len

    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    peak = status_mb("VmHWM:")
    print(json.dumps({
        "framework": "pytorch", "config": a.config, "mode": a.mode, "threads": a.threads, "T": T,
        "batch": 1 if a.mode == "generate" else B, "params": params, "reps": n,
        "median_ms": round(med * 1e3, 3), "min_ms": round(times[0] * 1e3, 3),
        "tokens_per_s": round(work_tokens / med, 1), "flops": float(flops),
        "gflops": round(flops / med / 1e9, 2), "peak_rss_mb": round(peak, 1),
        "rss_before_mb": round(rss_before, 1), "step_mem_mb": round(peak - rss_before, 1),
        "check": check, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
