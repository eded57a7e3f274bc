#!/usr/bin/env python3
"""PyTorch 1.13 reference for `bench/train/throughput.ts`: the same training step (Llama-family model, causal LM
loss, AdamW, global-norm clipping) in plain PyTorch, float32, on the CPU, to set Loom's tokens/s beside.

Model: Hugging Face Llama semantics written out (RMSNorm, rotate_half RoPE, GQA by repeating KV heads, SiLU-gated
MLP, tied embeddings), random init. Methods: `lora` (rank 8, alpha 16, all linear projections, base frozen) and
`full`. Prints one JSON line per method: tokens_per_s, step_s, peak_rss_mb.

Usage: OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tools/reference/train_ref.py --method lora --threads 2 \
         --vocab 49152 --hidden 576 --layers 30 --heads 9 --kv-heads 3 --inter 1536 --batch 4 --seq 256 --steps 3
"""
import argparse
import ctypes
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r, alpha):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(r, base.in_features).uniform_(-1 / math.sqrt(base.in_features), 1 / math.sqrt(base.in_features)))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.A.t() @ self.B.t()) * self.scale


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        hd = a.hidden // a.heads
        self.a, self.hd = a, hd
        self.q_proj = nn.Linear(a.hidden, a.heads * hd, bias=False)
        self.k_proj = nn.Linear(a.hidden, a.kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(a.hidden, a.kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(a.heads * hd, a.hidden, bias=False)
        self.gate_proj = nn.Linear(a.hidden, a.inter, bias=False)
        self.up_proj = nn.Linear(a.hidden, a.inter, bias=False)
        self.down_proj = nn.Linear(a.inter, a.hidden, bias=False)
        self.ln1 = RMSNorm(a.hidden)
        self.ln2 = RMSNorm(a.hidden)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        a, hd = self.a, self.hd
        y = self.ln1(x)
        q = self.q_proj(y).view(B, T, a.heads, hd).transpose(1, 2)
        k = self.k_proj(y).view(B, T, a.kv_heads, hd).transpose(1, 2)
        v = self.v_proj(y).view(B, T, a.kv_heads, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = a.heads // a.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, a.heads * hd)
        x = x + self.o_proj(o)
        y = self.ln2(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.embed = nn.Embedding(a.vocab, a.hidden)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.layers = nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.norm = RMSNorm(a.hidden)
        hd = a.hidden // a.heads
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        t = torch.arange(a.seq).float()
        f = torch.outer(t, inv)
        emb = torch.cat([f, f], dim=-1)
        self.register_buffer("cos", emb.cos()[None, None])
        self.register_buffer("sin", emb.sin()[None, None])
        self.register_buffer("mask", torch.full((a.seq, a.seq), float("-inf")).triu(1)[None, None])

    def forward(self, ids, labels):
        x = self.embed(ids)
        for l in self.layers:
            x = l(x, self.cos, self.sin, self.mask)
        logits = self.norm(x) @ self.embed.weight.t()
        return F.cross_entropy(logits[:, :-1].reshape(-1, self.a.vocab), labels[:, 1:].reshape(-1))


def blas_info():
    """Which BLAS this process really loaded (Debian's torch takes whatever libblas.so.3 alternative is active;
    without libopenblas0-pthread that is the slow reference BLAS) and, for OpenBLAS, the core kernels it runs."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if line.count("/") else ""
            if "blas" in path.rsplit("/", 1)[-1] or "lapack" in path.rsplit("/", 1)[-1]:
                libs.add(path)
    core = None
    for path in sorted(libs):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()
            break
        except (OSError, AttributeError):
            continue
    return {"blas_libs": sorted(os.path.realpath(x) for x in libs), "openblas_core": core,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE")}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--threads", type=int, default=2)
    for k, v in dict(vocab=49152, hidden=576, layers=30, heads=9, kv_heads=3, inter=1536, batch=4, seq=256, steps=3, rank=8).items():
        p.add_argument(f"--{k.replace('_', '-')}", type=int, default=v)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Model(a)
    if a.method == "lora":
        for prm in m.parameters():
            prm.requires_grad_(False)
        for l in m.layers:
            for name in ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]:
                setattr(l, name, LoRALinear(getattr(l, name), a.rank, 2 * a.rank))
    params = [q for q in m.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, foreach=True)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    times, cpus = [], []
    for i in range(a.steps + 1):
        t0 = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        loss = m(ids, ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i > 0:
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            times.append(time.perf_counter() - t0)
            cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    step = sorted(times)[len(times) // 2]
    cpu = sorted(cpus)[len(cpus) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"bench": "train_throughput", "impl": "pytorch-1.13", "method": a.method, "threads": a.threads,
                      "batch": a.batch, "seq": a.seq, "step_s": round(step, 3),
                      "tokens_per_s": round(a.batch * a.seq / step, 1), "cpu_s": round(cpu, 2),
                      "tokens_per_cpu_s": round(a.batch * a.seq / cpu, 1), "peak_rss_mb": round(rss),
                      "trainable": sum(q.numel() for q in params), "torch": torch.__version__,
                      "torch_threads": torch.get_num_threads(), **blas_info()}))


if __name__ == "__main__":
    main()
