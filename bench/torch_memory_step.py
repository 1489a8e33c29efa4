#!/usr/bin/python3
"""torch_memory_step: the PyTorch twin of bench/memory_step.cpp (the same model, modes, JSON
fields and FLOP formula): segment memory (Transformer-XL, Dai et al. 2019, arXiv:1901.02860)
as tensorzoo defines it in models/segment_memory.h.

  python3 bench/torch_memory_step.py --mode train|decode --mem M --threads N [--batch B]
      [--reps R] [--warmup W] [--history H] [--gen-tokens G] [--attn auto|sdpa|manual] [--json]
  python3 bench/torch_memory_step.py --selftest     (the twin's own equivalence checks)
  python3 bench/torch_memory_step.py --check-against FILE   (FILE from memory_step --mode check)

Model: byte vocabulary V = 256, C 256, L 4, 4 heads, no positions (NoPE), pre-LayerNorm blocks
with one fused qkv nn.Linear, causal attention, GELU (erf) MLP x4, final LayerNorm, head tied
to the token embedding, dropout 0, biases on; segment length T = 256; torch.optim.AdamW with
GPT-2 decay groups, as tensorzoo's optim::decay_groups. M = mem_len, 0 = the plain model.

  u^n            layer n's mixer input, LayerNorm'd (pre-norm)           [B, T, C]
  q, k, v      = qkv([mem^n ; u^n]); queries are the last T rows        keys [B, H, M + T, D]
  query i sees key j  iff  j <= M + i                                   (causal, offset M)
  mem^n       <- last M rows of [mem^n ; u^n.detach()]

Attention is F.scaled_dot_product_attention when torch has it (>= 2.0), with is_causal for
the plain segment and an explicit boolean mask for the memory offset; else (torch 1.13)
softmax(Q K^T / sqrt(D) + mask) V written out (--attn forces either).

Decoding (batch 1, greedy, under inference_mode) follows tensorzoo's algorithm: M > 0 keeps a
KV cache of one segment after its memory's keys; when T positions are decoded the segment's
normed inputs become the memory and the cache restarts from the memory's keys (so a step
sees at most M + T keys). M = 0: a KV cache over the whole history (H + G keys).

FLOPs per token (train): N_mm = L*12*C^2 + V*C; fwd = 2*N_mm + 6*L*C^2*M/T + 4*L*(T+M)*C;
train = 3*fwd. Elementwise work is not counted.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_gpt_step import decay_groups  # AdamW's GPT-2 decay groups, as in the GPT benchmark

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
ATTN = {"impl": "sdpa" if HAS_SDPA else "manual"}


def attend(q, k, v, offset):
    """q [B, H, t, D] at key positions offset.., k, v [B, H, S, D]: query i sees keys j <= offset + i."""
    t, S = q.shape[2], k.shape[2]
    mask = None
    if t > 1:
        mask = torch.ones(t, S, dtype=torch.bool, device=q.device).tril(offset)  # True = attend
    if ATTN["impl"] == "sdpa":
        if mask is not None and offset == 0 and S == t:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        att = att.masked_fill(~mask, float("-inf"))
    return F.softmax(att, dim=-1) @ v


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, u, mem=None, cache=None):
        """u [B, t, C]; mem [B, M, C] (keys before u; in decoding it replaces what the cache held)."""
        B, t, C = u.shape
        H, D = self.heads, C // self.heads
        x = u if mem is None else torch.cat([mem, u], 1)
        M = x.shape[1] - t
        q, k, v = self.qkv(x).view(B, M + t, 3, H, D).permute(2, 0, 3, 1, 4)  # each [B, H, M + t, D]
        q = q[:, :, M:]
        offset = M
        if cache is not None:
            if mem is not None:
                cache["length"] = 0
            start = cache["length"]
            cache["k"][:, :, start:start + M + t] = k
            cache["v"][:, :, start:start + M + t] = v
            cache["length"] = start + M + t
            k, v = cache["k"][:, :, :start + M + t], cache["v"][:, :, :start + M + t]
            offset = start + M
        y = attend(q, k, v, offset).transpose(1, 2).reshape(B, t, C)
        return self.out(y)


class Block(nn.Module):
    def __init__(self, dim, heads, mult):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, mult * dim)
        self.proj = nn.Linear(mult * dim, dim)

    def forward(self, x, mem=None, cache=None):
        u = self.norm1(x)  # what the memory keeps
        x = x + self.attn(u, mem, cache)
        return x + self.proj(F.gelu(self.fc(self.norm2(x)))), u


class LM(nn.Module):
    def __init__(self, vocab=256, dim=256, depth=4, heads=4, mult=4):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([Block(dim, heads, mult) for _ in range(depth)])
        self.norm_f = nn.LayerNorm(dim)
        self.dim, self.heads, self.depth = dim, heads, depth
        for name, p in self.named_parameters():  # GPT-2 style init (speed does not depend on it)
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * depth) if name.endswith(("out.weight", "proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids, mems=None, caches=None):
        """Logits [B, t, V] and each layer's normed mixer input u^n [B, t, C]."""
        h = self.tok_emb(ids)
        seen = []
        for n, layer in enumerate(self.layers):
            h, u = layer(h, mems[n] if mems else None, caches[n] if caches else None)
            seen.append(u)
        return F.linear(self.norm_f(h), self.tok_emb.weight), seen  # tied head

    def make_caches(self, capacity):
        D = self.dim // self.heads
        return [{"k": torch.empty(1, self.heads, capacity, D), "v": torch.empty(1, self.heads, capacity, D),
                 "length": 0} for _ in range(self.depth)]


def push(mems, seen, M):
    """mem^n <- last M rows of [mem^n ; u^n.detach()]."""
    out = []
    for n, u in enumerate(seen):
        a = u.detach() if mems is None or mems[n] is None else torch.cat([mems[n], u.detach()], 1)
        out.append(a[:, a.shape[1] - min(M, a.shape[1]):])
    return out


def segment_loss(model, ids, targets, mems, M):
    """One training segment: the loss, and the memory for the next segment (None when M = 0)."""
    logits, seen = model(ids, mems)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    return loss, (push(mems, seen, M) if M > 0 else None)


class Decoder:
    """Batch-1 decoding state. M > 0: segment memory (segment KV cache after the memory's keys);
    M = 0: one KV cache over everything."""

    def __init__(self, model, M, T, capacity):
        self.model, self.M, self.T = model, M, T
        self.caches = model.make_caches(M + T if M > 0 else capacity)
        self.mems = [None] * model.depth
        self.pending = [None] * model.depth  # u^n of the current segment so far
        self.filled = 0

    def step(self, ids):
        """ids [1, t] → logits [1, t, V]."""
        if self.M == 0:
            return self.model(ids, None, self.caches)[0]
        out, done, t = [], 0, ids.shape[1]
        while done < t:
            if self.filled == self.T:  # the segment is full: it becomes memory
                self.mems = push(self.mems, self.pending, self.M)
                self.pending, self.filled = [None] * self.model.depth, 0
            piece = min(t - done, self.T - self.filled)
            fresh = self.filled == 0  # the memory is projected once per segment; the cache keeps it
            if fresh:
                for c in self.caches:
                    c["length"] = 0
            mems = self.mems if fresh and self.mems[0] is not None else None
            logits, seen = self.model(ids[:, done:done + piece], mems, self.caches)
            self.pending = [u if p is None else torch.cat([p, u], 1) for p, u in zip(self.pending, seen)]
            self.filled += piece
            out.append(logits)
            done += piece
        return out[0] if len(out) == 1 else torch.cat(out, 1)

    def snapshot(self):
        clone = lambda x: None if x is None else x.clone()
        return ([{"k": c["k"].clone(), "v": c["v"].clone(), "length": c["length"]} for c in self.caches],
                [clone(m) for m in self.mems], [clone(p) for p in self.pending], self.filled)

    def restore(self, snap):
        caches, mems, pending, filled = snap
        self.caches = [{"k": c["k"].clone(), "v": c["v"].clone(), "length": c["length"]} for c in caches]
        self.mems, self.pending, self.filled = list(mems), list(pending), filled


def selftest():
    """The twin's algorithms agree: decoding token by token (and in chunks) gives the logits
    of segment-by-segment forward with memory; sdpa and the written-out softmax agree."""
    torch.manual_seed(0)
    model = LM(dim=32, depth=2, heads=4).eval()
    T, M = 8, 8
    ids = torch.randint(0, 256, (2, 4 * T))
    worst = {}
    with torch.no_grad():
        for impl in (["sdpa", "manual"] if HAS_SDPA else ["manual"]):
            ATTN["impl"] = impl
            mems, ref = None, []
            for s in range(4):  # segment-by-segment training forward
                logits, seen = model(ids[:, s * T:(s + 1) * T], mems)
                mems = push(mems, seen, M)
                ref.append(logits)
            ref = torch.cat(ref, 1)
            plain = model(ids)[0]  # one causal forward
            for b in range(2):
                for chunk in (1, 3):
                    for m in (M, 0):
                        d = Decoder(model, m, T, 4 * T)
                        got = torch.cat([d.step(ids[b:b + 1, i:i + chunk]) for i in range(0, 4 * T, chunk)], 1)
                        want = ref[b:b + 1] if m else plain[b:b + 1]
                        key = f"{impl} decode{'_txl' if m else '_plain'} chunk{chunk}"
                        worst[key] = max(worst.get(key, 0.0), (got - want).abs().max().item())
            # memory changes the logits after the first segment (the test can fail)
            worst[f"{impl} txl_vs_plain_2nd_segment (must be large)"] = (ref[:, T:] - plain[:, T:]).abs().max().item()
            worst[f"{impl} txl_vs_plain_1st_segment"] = (ref[:, :T] - plain[:, :T]).abs().max().item()
        if HAS_SDPA:
            q, k, v = (torch.randn(2, 4, 5, 8), torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 8))
            ATTN["impl"] = "sdpa"
            a = attend(q, k, v, 4)
            ATTN["impl"] = "manual"
            worst["sdpa_vs_manual_offset4"] = (a - attend(q, k, v, 4)).abs().max().item()
    ok = all(v < 1e-4 for k, v in worst.items() if "must be large" not in k) and all(
        v > 1e-3 for k, v in worst.items() if "must be large" in k)
    print(json.dumps({"selftest": "ok" if ok else "FAILED", "torch": torch.__version__, "max_abs_diff": worst}))
    return 0 if ok else 1


def read_safetensors(path):
    """name -> tensor of a safetensors file (F32 / I64: what memory_step --mode check writes)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64}
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=dtypes[h["dtype"]]).reshape(h["shape"]) if b > a else \
            torch.zeros(h["shape"], dtype=dtypes[h["dtype"]])
    return out, json.loads(header.get("__metadata__", {}).get("config", "{}"))


def check_against(path):
    """Loads tensorzoo's weights into the twin and compares the logits of the same three
    segments, read with memory (training form) and decoded token by token."""
    saved, config = read_safetensors(path)
    M, T = config.get("mem_len", 0), config["context"]
    model = LM(config["vocab"], config["dim"], config["depth"], config["heads"]).eval()
    rename = {"mixer.": "attn.", "ffn.fc.": "fc.", "ffn.proj.": "proj."}
    state = {}
    for name, t in saved.items():
        if name.startswith("param."):
            name = name[len("param."):]
            for a, b in rename.items():
                name = name.replace(a, b)
            state[name] = t
    model.load_state_dict(state)  # strict: every parameter named once
    ids, want = saved["ids"], saved["logits"]
    diffs = {}
    with torch.no_grad():
        mems, got = None, []
        for s in range(ids.shape[1] // T):
            logits, seen = model(ids[:, s * T:(s + 1) * T], mems)
            mems = push(mems, seen, M) if M > 0 else None
            got.append(logits)
        diffs["segments"] = (torch.cat(got, 1) - want).abs().max().item()
        if M > 0:
            d = Decoder(model, M, T, ids.shape[1])
            got = torch.cat([d.step(ids[:1, i:i + 1]) for i in range(ids.shape[1])], 1)
            diffs["decode_row0"] = (got - want[:1]).abs().max().item()
            plain = model(ids[:1, T:3 * T])[0]  # without memory the later segments differ (the check can fail)
            diffs["no_memory_segments_2_3 (must be large)"] = (plain[:, T:] - want[:1, 2 * T:]).abs().max().item()
    ok = all(v < 1e-3 for k, v in diffs.items() if "must be large" not in k) and all(
        v > 1e-2 for k, v in diffs.items() if "must be large" in k)
    print(json.dumps({"check_against_tensorzoo": "ok" if ok else "FAILED", "torch": torch.__version__,
                      "attn": ATTN["impl"], "mem": M, "logits_scale": want.abs().max().item(),
                      "max_abs_diff": diffs}))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["train", "decode"], default="train")
    ap.add_argument("--mem", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--history", type=int, default=1024)
    ap.add_argument("--gen-tokens", type=int, default=256)
    ap.add_argument("--attn", choices=["auto", "sdpa", "manual"], default="auto")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--check-against", metavar="FILE", help="compare with memory_step --mode check --out FILE")
    ap.add_argument("--json", action="store_true")  # the output is always one JSON object
    a = ap.parse_args()
    if a.attn == "sdpa" and not HAS_SDPA:
        ap.error(f"torch {torch.__version__} has no F.scaled_dot_product_attention")
    if a.attn != "auto":
        ATTN["impl"] = a.attn
    if a.selftest:
        raise SystemExit(selftest())
    if a.check_against:
        raise SystemExit(check_against(a.check_against))
    torch.set_num_threads(a.threads)

    T, V, C, L, M = 256, 256, 256, 4, a.mem
    torch.manual_seed(1234)
    model = LM(V, C, L, 4)
    params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(42)
    times, check, flops = [], 0.0, 0.0
    decode = a.mode == "decode"

    if not decode:
        B, steps = a.batch, a.warmup + a.reps
        stream = torch.randint(0, V, (B, steps * T + 1), generator=g)  # step i reads segment i
        model.train()
        opt = torch.optim.AdamW(decay_groups(model, 0.1), lr=3e-4)
        mems = None
        for i in range(steps):
            ids = stream[:, i * T:(i + 1) * T].contiguous()
            targets = stream[:, i * T + 1:(i + 1) * T + 1].contiguous()
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss, mems = segment_loss(model, ids, targets, mems, M)
            loss.backward()
            opt.step()
            s = time.perf_counter() - t0
            if i == 0:
                check = loss.item()
            if i >= a.warmup:
                times.append(s)
        n_mm = L * 12 * C * C + V * C
        fwd = 2 * n_mm + 6 * L * C * C * M / T + 4 * L * (T + M) * C
        work = B * T
        flops = 3 * fwd * work
    else:
        model.eval()
        with torch.inference_mode():
            history = torch.randint(0, V, (1, a.history), generator=g)
            d = Decoder(model, M, T, a.history + a.gen_tokens)
            for t in range(0, a.history, T):
                logits = d.step(history[:, t:t + T])
            first = int(logits[0, -1].argmax())
            snap = d.snapshot()
            for rep in range(a.warmup + a.reps):
                d.restore(snap)
                token, total = first, 0
                t0 = time.perf_counter()
                for _ in range(a.gen_tokens):
                    token = int(d.step(torch.tensor([[token]], dtype=torch.long))[0, -1].argmax())
                    total += token
                s = time.perf_counter() - t0
                if rep == 0:
                    check = float(total)
                if rep >= a.warmup:
                    times.append(s)
        work = a.gen_tokens

    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(json.dumps({
        "framework": "pytorch", "mode": a.mode, "mem": M, "threads": a.threads, "T": T,
        "batch": 1 if decode else a.batch, "history": a.history if decode else 0,
        "gen_tokens": a.gen_tokens if decode else 0, "params": params, "reps": n,
        "median_ms": round(med * 1e3, 3), "min_ms": round(times[0] * 1e3, 3),
        "tokens_per_s": round(work / med, 1), "ms_per_token": round(med * 1e3 / work, 4),
        "flops": float(flops), "gflops": round(flops / med / 1e9, 2), "check": check,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "torch": torch.__version__,
        "attn": ATTN["impl"]}), flush=True)


if __name__ == "__main__":
    main()
