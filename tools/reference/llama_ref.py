#!/usr/bin/env python3
"""Independent reference for Loom's Llama-family graph: plain PyTorch (no transformers), float64.

Follows Hugging Face semantics (modeling_llama / qwen2 / qwen3 / mistral): rotate_half RoPE with optional
"llama3" frequency scaling, RMSNorm normalising first and multiplying by the weight after, GQA by repeating KV
heads, causal + padding additive mask
(+ Mistral's sliding window), SiLU-gated MLP, tied or untied lm_head, loss = mean cross-entropy of
logits[:, :-1] against labels[:, 1:] over labels != -100.

Writes committed fixtures to test/fixtures/models/<variant>/:
  config.json          HF config keys
  model.safetensors    float32 weights with HF names (tied models store only embed_tokens)
  inputs.json          input_ids, labels (with -100), and a left-padded case with attention_mask/position_ids
  outputs.safetensors  logits [B,T,V], loss [], padded_logits [B,T,V]
  grads.safetensors    d loss / d weight for every stored weight (float32)

Usage: /usr/bin/python3 tools/reference/llama_ref.py [out_dir]   (needs python3-torch; tests do not)
"""
import json
import math
import os
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)

VARIANTS = {
    # Llama 2 style: MHA, untied, theta 1e4; with Llama's optional attention_bias (q/k/v/o) and mlp_bias, which
    # released checkpoints leave off but the config allows.
    "llama": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, vocab_size=128,
        rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False, max_position_embeddings=256,
        hidden_act="silu", attention_bias=True, mlp_bias=True, bos_token_id=1, eos_token_id=2,
    ),
    # Llama 3.x: rope_scaling "llama3". original_max_position_embeddings is shrunk to 64 so that with
    # head_dim 16 the frequencies fall in all three bands (kept, smoothed, divided by factor).
    "llama3": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16, vocab_size=160,
        rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=512,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64),
        hidden_act="silu", attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
    ),
    # Qwen2/2.5: bias on q/k/v (not o), tied embeddings, GQA.
    "qwen2": dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=144,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=256,
        hidden_act="silu", use_sliding_window=False, sliding_window=None, bos_token_id=1, eos_token_id=2,
    ),
    # Qwen3: RMSNorm on each q/k head before RoPE, head_dim (16) != hidden/heads (8), tied.
    "qwen3": dict(
        architectures=["Qwen3ForCausalLM"], model_type="qwen3", hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=128,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=256,
        hidden_act="silu", attention_bias=False, use_sliding_window=False, sliding_window=None,
        bos_token_id=1, eos_token_id=2,
    ),
    # Mistral: GQA with a single KV head; a sliding window (5) shorter than the fixture sequences (8).
    "mistral": dict(
        architectures=["MistralForCausalLM"], model_type="mistral", hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, vocab_size=128,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=256,
        hidden_act="silu", sliding_window=5, bos_token_id=1, eos_token_id=2,
    ),
    # SmolLM2-shaped (llama arch, tied, 3:1 GQA, theta 1e5).
    "smollm2": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=48, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, vocab_size=128,
        rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, max_position_embeddings=256,
        hidden_act="silu", attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
    ),
}


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def has_qkv_bias(cfg):
    return cfg["model_type"] == "qwen2" or bool(cfg.get("attention_bias"))


def has_o_bias(cfg):
    # Llama's attention_bias covers o_proj too; Qwen2 biases only q/k/v; Qwen3's attention_bias is always off here.
    return cfg["model_type"] == "llama" and bool(cfg.get("attention_bias"))


def has_mlp_bias(cfg):
    return cfg["model_type"] == "llama" and bool(cfg.get("mlp_bias"))


def init_weights(cfg, gen):
    """Random weights scaled so activations and logits are O(1): a fixture of near-zero logits proves little."""
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd, nh, nkv = head_dim_of(cfg), cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def lin(out_f, in_f):
        return torch.randn(out_f, in_f, generator=gen) / math.sqrt(in_f)

    def norm(n):
        return 1.0 + 0.1 * torch.randn(n, generator=gen)

    # Tied models reuse the embedding as lm_head, so a smaller scale keeps their logits O(1) too.
    emb_std = 0.2 if cfg["tie_word_embeddings"] else 0.5
    w = {"model.embed_tokens.weight": emb_std * torch.randn(v, h, generator=gen)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(h)
        w[p + "self_attn.q_proj.weight"] = lin(nh * hd, h)
        w[p + "self_attn.k_proj.weight"] = lin(nkv * hd, h)
        w[p + "self_attn.v_proj.weight"] = lin(nkv * hd, h)
        if has_qkv_bias(cfg):
            w[p + "self_attn.q_proj.bias"] = 0.1 * torch.randn(nh * hd, generator=gen)
            w[p + "self_attn.k_proj.bias"] = 0.1 * torch.randn(nkv * hd, generator=gen)
            w[p + "self_attn.v_proj.bias"] = 0.1 * torch.randn(nkv * hd, generator=gen)
        if cfg["model_type"] == "qwen3":
            w[p + "self_attn.q_norm.weight"] = norm(hd)
            w[p + "self_attn.k_norm.weight"] = norm(hd)
        w[p + "self_attn.o_proj.weight"] = lin(h, nh * hd)
        if has_o_bias(cfg):
            w[p + "self_attn.o_proj.bias"] = 0.1 * torch.randn(h, generator=gen)
        w[p + "post_attention_layernorm.weight"] = norm(h)
        w[p + "mlp.gate_proj.weight"] = lin(inter, h)
        w[p + "mlp.up_proj.weight"] = lin(inter, h)
        w[p + "mlp.down_proj.weight"] = lin(h, inter)
        if has_mlp_bias(cfg):
            w[p + "mlp.gate_proj.bias"] = 0.1 * torch.randn(inter, generator=gen)
            w[p + "mlp.up_proj.bias"] = 0.1 * torch.randn(inter, generator=gen)
            w[p + "mlp.down_proj.bias"] = 0.1 * torch.randn(h, generator=gen)
    w["model.norm.weight"] = norm(h)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = lin(v, h)
    return w


def inv_freq_of(cfg):
    hd = head_dim_of(cfg)
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wl >= high_wl) & (wl <= low_wl)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def hf_rope_fp32(cfg, positions):
    """cos/sin exactly as HF computes them: inv_freq, llama3 scaling and angles all in float32."""
    hd = head_dim_of(cfg)
    f32 = torch.float32
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).to(f32) / hd))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wl < high_wl) * ~(wl > low_wl)
        inv = torch.where(medium, smoothed, scaled)
    pos = torch.tensor(positions, dtype=torch.int64)[None, None, :].to(f32)
    freqs = (inv[None, :, None].to(f32) @ pos).transpose(1, 2)[0]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


ROPE_CASES = {
    "llama2": dict(head_dim=128, rope_theta=10000.0),
    "smollm2": dict(head_dim=64, rope_theta=100000.0),
    "qwen": dict(head_dim=128, rope_theta=1000000.0),
    "llama3.2": dict(head_dim=64, rope_theta=500000.0, rope_scaling=dict(
        rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=8192)),
}
ROPE_POSITIONS = [0, 1, 2, 7, 100, 1000, 4095, 8191, 12345, 32767]


def make_rope_fixture(out_dir):
    """Rope tables at long positions, where float32 vs float64 angle arithmetic differs by up to ~1e-3."""
    d = os.path.join(out_dir, "rope")
    os.makedirs(d, exist_ok=True)
    tensors = {}
    for name, cfg in ROPE_CASES.items():
        cos, sin = hf_rope_fp32(cfg, ROPE_POSITIONS)
        tensors[f"{name}.cos"], tensors[f"{name}.sin"] = cos, sin
    write_safetensors(os.path.join(d, "rope.safetensors"), tensors)
    with open(os.path.join(d, "cases.json"), "w") as f:
        json.dump({"positions": ROPE_POSITIONS, "cases": ROPE_CASES}, f, indent=2)
        f.write("\n")


def rms_norm(x, weight, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(cfg, w, input_ids, attention_mask=None, position_ids=None):
    b, t = input_ids.shape
    h, nh, nkv, hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim_of(cfg)
    eps = cfg["rms_norm_eps"]
    if position_ids is None:
        position_ids = torch.arange(t).unsqueeze(0).expand(b, t)
    freqs = position_ids.to(torch.float64).unsqueeze(-1) * inv_freq_of(cfg)  # [B,T,hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)  # [B,1,T,hd]

    neg = torch.finfo(torch.float64).min
    allowed = torch.tril(torch.ones(t, t, dtype=torch.bool)).unsqueeze(0).expand(b, t, t)
    if cfg["model_type"] == "mistral" and cfg.get("sliding_window"):
        # HF Mistral: query i may see key j only when i - j < sliding_window (indices, not position ids).
        i_idx = torch.arange(t).unsqueeze(1)
        j_idx = torch.arange(t).unsqueeze(0)
        allowed = allowed & ((i_idx - j_idx) < cfg["sliding_window"]).unsqueeze(0)
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool().unsqueeze(1)
    mask = torch.zeros(b, 1, t, t).masked_fill(~allowed.unsqueeze(1), neg)

    x = w["model.embed_tokens.weight"][input_ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        r = x
        y = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name, inp, p=p):
            out = inp @ w[p + f"{name}.weight"].T
            bias = w.get(p + f"{name}.bias")
            return out if bias is None else out + bias

        q = proj("self_attn.q_proj", y).view(b, t, nh, hd)
        k = proj("self_attn.k_proj", y).view(b, t, nkv, hd)
        v = proj("self_attn.v_proj", y).view(b, t, nkv, hd).transpose(1, 2)
        if cfg["model_type"] == "qwen3":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = nh // nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(2, 3)) * (hd ** -0.5) + mask
        attn = torch.softmax(scores, dim=-1) @ v  # [B,H,T,hd]
        attn = attn.transpose(1, 2).reshape(b, t, nh * hd)
        x = r + proj("self_attn.o_proj", attn)

        r = x
        y = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = proj("mlp.gate_proj", y)
        up = proj("mlp.up_proj", y)
        x = r + proj("mlp.down_proj", torch.nn.functional.silu(gate) * up)
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def causal_lm_loss(logits, labels):
    v = logits.shape[-1]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, v), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="mean"
    )


def write_safetensors(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        arr = tensors[name].detach().to(torch.float32).contiguous()
        raw = arr.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)


def make_fixture(name, cfg, out_dir, seed):
    gen = torch.Generator().manual_seed(seed)
    w32 = {k: v.to(torch.float32) for k, v in init_weights(cfg, gen).items()}
    # Reference math in float64 on exactly the float32 values the engine will load.
    w = {k: v.to(torch.float64).requires_grad_(True) for k, v in w32.items()}
    b, t, vocab = 2, 8, cfg["vocab_size"]
    ids = torch.randint(0, vocab, (b, t), generator=gen)
    labels = ids.clone()
    labels[0, :3] = -100  # e.g. a prompt that is not trained on
    labels[1, 5] = -100
    logits = forward(cfg, w, ids)
    loss = causal_lm_loss(logits, labels)
    loss.backward()

    pad = 3
    pids = torch.randint(0, vocab, (b, t), generator=gen)
    amask = torch.ones(b, t, dtype=torch.long)
    amask[0, :pad] = 0
    pids[0, :pad] = 0
    pos = (amask.cumsum(-1) - 1).masked_fill(amask == 0, 1)
    with torch.no_grad():
        plogits = forward(cfg, w, pids, amask, pos)

    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    full_cfg = dict(cfg, torch_dtype="float32", initializer_range=0.02, use_cache=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(full_cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(d, "model.safetensors"), w32, {"format": "pt"})
    write_safetensors(os.path.join(d, "grads.safetensors"), {k: v.grad for k, v in w.items()})
    write_safetensors(
        os.path.join(d, "outputs.safetensors"),
        {"logits": logits, "loss": loss.reshape(()), "padded_logits": plogits},
    )
    inputs = {
        "input_ids": ids.tolist(),
        "labels": labels.tolist(),
        "padded": {"input_ids": pids.tolist(), "attention_mask": amask.tolist(), "position_ids": pos.tolist()},
    }
    with open(os.path.join(d, "inputs.json"), "w") as f:
        json.dump(inputs, f)
        f.write("\n")
    print(f"{name}: loss {loss.item():.6f}, |logits| max {logits.abs().max().item():.3f}")


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "test", "fixtures", "models")
    for i, (name, cfg) in enumerate(VARIANTS.items()):
        make_fixture(name, cfg, out, seed=1234 + i)
    make_rope_fixture(out)


if __name__ == "__main__":
    main()
