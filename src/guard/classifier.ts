/**
 * The guard's classifier layer: a small sequence classifier trained with Loom itself (`loom train`, stage: cls;
 * `loom guard train-classifier` builds it from data/guard/cls-train.jsonl) run synchronously inside `checkInput`.
 *
 * Why a second, plain-JS forward pass next to the ONNX graph: the guard API is synchronous (serve middleware calls it
 * per request and per streamed chunk) and the model is tiny (two layers, 64 wide), so a direct float32 loop costs a
 * few milliseconds and needs no runtime session. test/guard/classifier.test.ts checks it against the ONNX graph
 * (`loadClassifier` in src/eval/cls) and the tokenizer against the `tokenizers` binding.
 *
 * Supported: Llama-family classification folders (`id2label`, `score.weight`) without q/k norm or biases, with a
 * GPT-2-style byte-level BPE tokenizer.json (what Loom's BPE trainer writes).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.ts';
import { type LlamaConfig, readHfConfig, ropeCosSin } from '../models/config.ts';
import { loadWeights } from '../models/folder.ts';
import type { Float32Tensor } from '../models/safetensors.ts';
import { byteLevelChars } from '../tokenizer/tokenizer.ts';
import { GPT2_SPLIT } from '../tokenizer/train-bpe.ts';

interface TokenizerJson {
  added_tokens?: { id: number; content: string }[];
  normalizer?: unknown;
  pre_tokenizer?: { type?: string; use_regex?: boolean } | null;
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
}

/** Byte-level BPE encoding (GPT-2 style), synchronous; added (special) tokens are matched in the raw text first. */
class ByteLevelBpe {
  private readonly vocab: Map<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly added: { content: string; id: number }[];
  private readonly byteToChar: string[] = [];
  private readonly cache = new Map<string, number[]>();

  constructor(json: TokenizerJson, file = 'tokenizer.json') {
    if (json.model.type !== 'BPE' || json.pre_tokenizer?.type !== 'ByteLevel' || json.normalizer) {
      throw new LoomError('TOKENIZER', 'the guard classifier needs a byte-level BPE tokenizer without a normalizer', {
        file,
        hint: 'train the classifier with `loom guard train-classifier` (it trains such a tokenizer)',
      });
    }
    this.vocab = new Map(Object.entries(json.model.vocab));
    json.model.merges.forEach((m, i) => {
      this.ranks.set(Array.isArray(m) ? m.join(' ') : m, i);
    });
    this.added = (json.added_tokens ?? []).slice().sort((a, b) => b.content.length - a.content.length);
    for (const [ch, b] of byteLevelChars()) this.byteToChar[b] = ch;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    let rest = text;
    while (rest.length > 0) {
      let at = -1;
      let tok: { content: string; id: number } | undefined;
      for (const a of this.added) {
        const i = rest.indexOf(a.content);
        if (i >= 0 && (at < 0 || i < at)) {
          at = i;
          tok = a;
        }
      }
      const plain = at < 0 ? rest : rest.slice(0, at);
      for (const m of plain.matchAll(GPT2_SPLIT)) ids.push(...this.word(m[0]));
      if (at < 0 || !tok) break;
      ids.push(tok.id);
      rest = rest.slice(at + tok.content.length);
    }
    return ids;
  }

  private word(w: string): number[] {
    const hit = this.cache.get(w);
    if (hit) return hit;
    let syms = Array.from(new TextEncoder().encode(w), (b) => this.byteToChar[b]!);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = this.ranks.get(`${syms[i]} ${syms[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const a = syms[best]!;
      const b = syms[best + 1]!;
      const next: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(syms[i]!);
      }
      syms = next;
    }
    const ids = syms.map((s) => this.vocab.get(s) ?? 0);
    if (this.cache.size < 50000) this.cache.set(w, ids);
    return ids;
  }
}

export interface GuardClassifier {
  readonly labels: readonly string[];
  readonly config: LlamaConfig;
  encode(text: string): number[];
  /** Class probabilities (softmax of the pooled last-token logits), in label order. */
  classify(text: string): Float32Array;
}

/** y[o] = W[o,:] · x for HF [out, in] weights. */
function matvec(w: Float32Array, x: Float32Array, xOff: number, inF: number, outF: number, y: Float32Array, yOff = 0) {
  for (let o = 0; o < outF; o++) {
    let s = 0;
    const r = o * inF;
    for (let i = 0; i < inF; i++) s += w[r + i]! * x[xOff + i]!;
    y[yOff + o] = s;
  }
}

function rmsNorm(x: Float32Array, off: number, n: number, w: Float32Array, eps: number, y: Float32Array, yOff: number) {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i]! * x[off + i]!;
  const inv = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) y[yOff + i] = x[off + i]! * inv * w[i]!;
}

export function loadGuardClassifier(dir: string, opts: { cutoff?: number } = {}): GuardClassifier {
  const config = readHfConfig(join(dir, 'config.json'));
  const labels = config.labels;
  if (!labels) {
    throw new LoomError('MODEL_INVALID', `${dir} is not a sequence-classification model`, {
      file: join(dir, 'config.json'),
      field: 'architectures',
      hint: 'build one with `loom guard train-classifier`',
    });
  }
  if (config.qkNorm || config.qkvBias || config.oBias || config.mlpBias || config.slidingWindow !== null) {
    throw new LoomError('MODEL_INVALID', 'the guard classifier supports plain Llama blocks (no biases, q/k norm)', {
      file: dir,
    });
  }
  const tok = new ByteLevelBpe(
    JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
    join(dir, 'tokenizer.json'),
  );
  const W = loadWeights(dir);
  const get = (n: string): Float32Array => (W.get(n) as Float32Tensor).data;
  const cutoff = Math.min(opts.cutoff ?? 64, config.maxPositionEmbeddings);
  const { hiddenSize: H, numHeads: nh, numKvHeads: nkv, headDim: hd, intermediateSize: I, numLayers: L } = config;
  const rope = ropeCosSin(config, cutoff);
  const C = labels.length;

  function classify(text: string): Float32Array {
    let ids = tok.encode(text);
    if (ids.length === 0) ids = [config.padTokenId ?? 0];
    ids = ids.slice(0, cutoff);
    const T = ids.length;
    const emb = get('model.embed_tokens.weight');
    const x = new Float32Array(T * H);
    ids.forEach((id, t) => {
      x.set(emb.subarray(id * H, id * H + H), t * H);
    });
    const y = new Float32Array(T * H);
    const q = new Float32Array(T * nh * hd);
    const k = new Float32Array(T * nkv * hd);
    const v = new Float32Array(T * nkv * hd);
    const att = new Float32Array(nh * hd);
    const tmp = new Float32Array(H);
    const gate = new Float32Array(I);
    const up = new Float32Array(I);
    const scores = new Float32Array(T);
    const ropeAt = (buf: Float32Array, off: number, t: number) => {
      const half = hd / 2;
      for (let i = 0; i < half; i++) {
        const a = buf[off + i]!;
        const b = buf[off + i + half]!;
        const c1 = rope.cos[t * hd + i]!;
        const s1 = rope.sin[t * hd + i]!;
        const c2 = rope.cos[t * hd + i + half]!;
        const s2 = rope.sin[t * hd + i + half]!;
        buf[off + i] = a * c1 - b * s1;
        buf[off + i + half] = b * c2 + a * s2;
      }
    };
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}`;
      // In the last layer only the pooled (last) position's output is used: its keys/values need every position,
      // its query, attention and MLP only the last one.
      const from = l === L - 1 ? T - 1 : 0;
      const ln1 = get(`${p}.input_layernorm.weight`);
      for (let t = 0; t < T; t++) {
        rmsNorm(x, t * H, H, ln1, config.rmsNormEps, y, t * H);
        matvec(get(`${p}.self_attn.k_proj.weight`), y, t * H, H, nkv * hd, k, t * nkv * hd);
        matvec(get(`${p}.self_attn.v_proj.weight`), y, t * H, H, nkv * hd, v, t * nkv * hd);
        for (let h = 0; h < nkv; h++) ropeAt(k, (t * nkv + h) * hd, t);
        if (t >= from) {
          matvec(get(`${p}.self_attn.q_proj.weight`), y, t * H, H, nh * hd, q, t * nh * hd);
          for (let h = 0; h < nh; h++) ropeAt(q, (t * nh + h) * hd, t);
        }
      }
      const scale = 1 / Math.sqrt(hd);
      const group = nh / nkv;
      const ln2 = get(`${p}.post_attention_layernorm.weight`);
      const oW = get(`${p}.self_attn.o_proj.weight`);
      for (let t = from; t < T; t++) {
        for (let h = 0; h < nh; h++) {
          const kh = Math.floor(h / group);
          let max = -Infinity;
          for (let s = 0; s <= t; s++) {
            let d = 0;
            for (let i = 0; i < hd; i++) d += q[(t * nh + h) * hd + i]! * k[(s * nkv + kh) * hd + i]!;
            scores[s] = d * scale;
            if (scores[s]! > max) max = scores[s]!;
          }
          let sum = 0;
          for (let s = 0; s <= t; s++) {
            scores[s] = Math.exp(scores[s]! - max);
            sum += scores[s]!;
          }
          for (let i = 0; i < hd; i++) {
            let acc = 0;
            for (let s = 0; s <= t; s++) acc += scores[s]! * v[(s * nkv + kh) * hd + i]!;
            att[h * hd + i] = acc / sum;
          }
        }
        matvec(oW, att, 0, nh * hd, H, tmp);
        for (let i = 0; i < H; i++) x[t * H + i] = x[t * H + i]! + tmp[i]!;
        rmsNorm(x, t * H, H, ln2, config.rmsNormEps, y, t * H);
        matvec(get(`${p}.mlp.gate_proj.weight`), y, t * H, H, I, gate);
        matvec(get(`${p}.mlp.up_proj.weight`), y, t * H, H, I, up);
        for (let i = 0; i < I; i++) {
          const g = gate[i]!;
          gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
        }
        matvec(get(`${p}.mlp.down_proj.weight`), gate, 0, I, H, tmp);
        for (let i = 0; i < H; i++) x[t * H + i] = x[t * H + i]! + tmp[i]!;
      }
    }
    const last = new Float32Array(H);
    rmsNorm(x, (T - 1) * H, H, get('model.norm.weight'), config.rmsNormEps, last, 0);
    const z = new Float32Array(C);
    matvec(get('score.weight'), last, 0, H, C, z);
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, z[c]!);
    let sum = 0;
    for (let c = 0; c < C; c++) {
      z[c] = Math.exp(z[c]! - max);
      sum += z[c]!;
    }
    for (let c = 0; c < C; c++) z[c] = z[c]! / sum;
    return z;
  }

  return { labels, config, encode: (t) => tok.encode(t).slice(0, cutoff), classify };
}
