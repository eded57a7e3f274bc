#!/usr/bin/env python3
"""Reference for Loom's in-graph optimiser: one torch.optim.AdamW step after torch.nn.utils.clip_grad_norm_, run by
PyTorch 1.13 on two tensors shaped like the tiny preset's `model.layers.1.self_attn.q_proj.weight` (weight-decay
group) and `model.layers.1.input_layernorm.weight` (no-decay group), starting from non-zero moments at step t = 3.

Writes test/fixtures/train/adamw_torch.safetensors with, per tensor <n>: param.<n>, grad.<n>, exp_avg.<n>,
exp_avg_sq.<n> (inputs) and new.<n>, new_exp_avg.<n>, new_exp_avg_sq.<n> (after the step), plus the settings and the
pre-clip total norm in the metadata.

Usage: /usr/bin/python3 tools/reference/adamw_ref.py
"""
import json
import struct

import torch

torch.manual_seed(1234)
SETTINGS = dict(lr=3e-3, betas=(0.9, 0.95), eps=1e-6, weight_decay=0.1, max_grad_norm=1.0, step=3)
shapes = {"model.layers.1.self_attn.q_proj.weight": (64, 64), "model.layers.1.input_layernorm.weight": (64,)}

params, inputs = {}, {}
for name, shape in shapes.items():
    p = torch.nn.Parameter((torch.randn(shape) * 0.05).float())
    g = (torch.randn(shape) * 0.3).float()
    m = (torch.randn(shape) * 0.01).float()
    v = (torch.rand(shape) * 1e-3).float()
    inputs[name] = dict(param=p.detach().clone(), grad=g.clone(), exp_avg=m.clone(), exp_avg_sq=v.clone())
    p.grad = g.clone()
    params[name] = (p, m, v)

decay = [params["model.layers.1.self_attn.q_proj.weight"][0]]
no_decay = [params["model.layers.1.input_layernorm.weight"][0]]
opt = torch.optim.AdamW(
    [{"params": decay, "weight_decay": SETTINGS["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
    lr=SETTINGS["lr"], betas=SETTINGS["betas"], eps=SETTINGS["eps"],
)
for p, m, v in params.values():
    opt.state[p] = {"step": torch.tensor(float(SETTINGS["step"] - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
total_norm = torch.nn.utils.clip_grad_norm_([p for p, _, _ in params.values()], SETTINGS["max_grad_norm"])
opt.step()

tensors = {}
for name, (p, _, _) in params.items():
    for k, t in inputs[name].items():
        tensors[f"{k}.{name}"] = t
    st = opt.state[p]
    tensors[f"new.{name}"] = p.detach().clone()
    tensors[f"new_exp_avg.{name}"] = st["exp_avg"].clone()
    tensors[f"new_exp_avg_sq.{name}"] = st["exp_avg_sq"].clone()

meta = {"settings": json.dumps(SETTINGS), "total_norm": repr(float(total_norm)), "torch": torch.__version__}
header, offset, blobs = {"__metadata__": meta}, 0, []
for name, t in tensors.items():
    b = t.contiguous().numpy().astype("<f4").tobytes()
    header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
    offset += len(b)
    blobs.append(b)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("test/fixtures/train/adamw_torch.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print("total_norm", float(total_norm))
