#!/usr/bin/env python3
"""PyTorch reference for bench/engine/smollm2.ts: the same SmolLM2-135M-shaped model (random fp32 weights), the
same three measurements (prefill 1x512, decode 128 tokens after a 32-token prompt with a KV cache, LoRA rank-8
forward+backward at 4x256), same thread count. Plain PyTorch (1.13 has no SDPA): explicit matmul/softmax attention.

Usage: OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/engine/smollm2_torch.py [threads] [--quick]
(Debian's OpenBLAS misdetects this CPU and is ~4x slower without OPENBLAS_CORETYPE, which would flatter us.)
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn.functional as F

args = [a for a in sys.argv[1:] if not a.startswith("--")]
THREADS = int(args[0]) if args else 2
QUICK = "--quick" in sys.argv
torch.set_num_threads(THREADS)
torch.manual_seed(0)

V, H, I, L, NH, NKV = 49152, 576, 1536, (4 if QUICK else 30), 9, 3
D = H // NH
G = NH // NKV
EPS = 1e-5
THETA = 100000.0


def emit(**kw):
    print(json.dumps({"bench": "torch.smollm2", "layers": L, "threads": THREADS, **kw}), flush=True)


class Lin(torch.nn.Module):
    def __init__(self, i, o, rank):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(o, i) * 0.04, requires_grad=False)
        self.rank = rank
        if rank:
            self.a = torch.nn.Parameter(torch.full((rank, i), 0.01))
            self.b = torch.nn.Parameter(torch.full((o, rank), 0.001))

    def forward(self, x):
        y = F.linear(x, self.w)
        if self.rank:
            y = y + F.linear(F.linear(x, self.a), self.b) * 2.0
        return y


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rot(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


class Model(torch.nn.Module):
    def __init__(self, rank=0):
        super().__init__()
        self.emb = torch.nn.Parameter(torch.randn(V, H) * 0.04, requires_grad=False)
        mk = lambda i, o: Lin(i, o, rank)  # noqa: E731
        self.layers = torch.nn.ModuleList()
        for _ in range(L):
            m = torch.nn.Module()
            m.q, m.k, m.v, m.o = mk(H, NH * D), mk(H, NKV * D), mk(H, NKV * D), mk(NH * D, H)
            m.g, m.u, m.d = mk(H, I), mk(H, I), mk(I, H)
            m.n1 = torch.nn.Parameter(torch.ones(H), requires_grad=False)
            m.n2 = torch.nn.Parameter(torch.ones(H), requires_grad=False)
            self.layers.append(m)
        self.norm = torch.nn.Parameter(torch.ones(H), requires_grad=False)
        inv = 1.0 / (THETA ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
        f = torch.outer(torch.arange(8192, dtype=torch.float64), inv)
        e = torch.cat((f, f), -1)
        self.cos, self.sin = e.cos().float(), e.sin().float()

    def forward(self, ids, past=None, last_only=False):
        B, T = ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        cos = self.cos[P : P + T][None, None]
        sin = self.sin[P : P + T][None, None]
        x = self.emb[ids]
        S = P + T
        mask = torch.full((T, S), float("-inf")).triu(P + 1) if T > 1 else None
        present = []
        for i, m in enumerate(self.layers):
            y = rms(x, m.n1)
            q = m.q(y).view(B, T, NH, D).transpose(1, 2)
            k = m.k(y).view(B, T, NKV, D).transpose(1, 2)
            v = m.v(y).view(B, T, NKV, D).transpose(1, 2)
            q = q * cos + rot(q) * sin
            k = k * cos + rot(k) * sin
            if past is not None:
                k = torch.cat((past[i][0], k), 2)
                v = torch.cat((past[i][1], v), 2)
            present.append((k, v))
            qg = q.reshape(B, NKV, G * T, D)
            s = (qg @ k.transpose(-1, -2)) / math.sqrt(D)
            if mask is not None:
                s = (s.view(B, NKV, G, T, S) + mask).view(B, NKV, G * T, S)
            a = (s.softmax(-1) @ v).view(B, NH, T, D).transpose(1, 2).reshape(B, T, H)
            x = x + m.o(a)
            y = rms(x, m.n2)
            x = x + m.d(F.silu(m.g(y)) * m.u(y))
        x = rms(x, self.norm)
        if last_only:
            x = x[:, -1:]
        return F.linear(x, self.emb), present  # tied lm_head, no adapter (as in the TS bench)


def timeit(fn, min_s, min_runs):
    """Median wall seconds and median process CPU seconds (all threads) per call."""
    fn()
    ts, cs = [], []
    t0 = time.perf_counter()
    while len(ts) < min_runs or time.perf_counter() - t0 < min_s:
        t, c = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t)
        cs.append(time.process_time() - c)
    ts.sort()
    cs.sort()
    return ts[len(ts) // 2], cs[len(cs) // 2]


def rates(tokens, wall, cpu):
    # CPU seconds barely change with machine load: tokens / (cpu / threads) estimates an idle machine.
    return dict(tokens_per_s=round(tokens / wall, 1), cpu_s=round(cpu, 3),
                idle_estimate_tokens_per_s=round(tokens / (cpu / THREADS), 1))


with torch.no_grad():
    model = Model(0)
    ids = torch.randint(0, V, (1, 512))
    pre, pre_cpu = timeit(lambda: model(ids, last_only=True), 0.5 if QUICK else 3, 2)
    emit(phase="prefill", batch=1, tokens=512, **rates(512, pre, pre_cpu))
    steps = 16 if QUICK else 128

    def decode():
        _, past = model(torch.randint(0, V, (1, 32)), last_only=True)
        t0, c0 = time.perf_counter(), time.process_time()
        for s in range(steps):
            _, past = model(torch.randint(0, V, (1, 1)), past=past, last_only=True)
        return time.perf_counter() - t0, time.process_time() - c0

    decode()
    emit(phase="decode", prompt=32, new_tokens=steps, **rates(steps, *decode()))
    del model

model = Model(8)
ids = torch.randint(0, V, (4, 256))


def step():
    logits, _ = model(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    loss.backward()


st, st_cpu = timeit(step, 1 if QUICK else 6, 3)
emit(phase="lora_fwd_bwd", batch=4, seq=256, step_s=round(st, 3), **rates(1024, st, st_cpu))
emit(phase="memory", peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
