/**
 * Opt-in weight quantization for inference graphs: MatMuls whose right operand is a frozen weight (directly, or
 * through the Transpose/Cast of an HF [out, in] weight) become com.microsoft.MatMulNBits with 4- or 8-bit
 * symmetric block quantization. Lossy by design (not a numerical-equivalence fusion); see docs/engine.md.
 *
 * Layout (ORT MatMulNBits): B is [N][K] (PyTorch Linear layout), cut along K into blocks of `blockSize` values
 * (the last one zero-padded); a block stores blockSize*bits/8 bytes, low nibble first for 4 bits; no zero points
 * input, so ORT uses the implicit zero point 2^(bits-1); w ≈ (q - 2^(bits-1)) * scale, with the scale chosen so the
 * block's largest-magnitude value maps exactly onto q = 0.
 */
import { type Graph, Tensor } from '../graph/graph.ts';
import { fromHalf, type HostTensor, toHalf, toNumbers } from '../graph/types.ts';
import type { EmitNode } from './emit.ts';

export interface QuantizeOptions {
  bits?: 4 | 8;
  /** Power of two >= 16; default 32. */
  blockSize?: number;
  /** ORT accuracy_level: 0 = default (fp32 math), 4 = int8 activations (faster, less accurate). */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
  /** Skip weights with fewer elements than this (default 0). */
  minElements?: number;
  /**
   * Also quantize Gathers from a frozen [V, K] table (the token embedding) into com.microsoft.GatherBlockQuantized
   * over the same blocks, sharing one initializer with a tied LM head's MatMulNBits. Default false.
   */
  gather?: boolean;
  /**
   * How the block scales are stored in the file. 'float16' halves them (34 B per 32 int8 weights, as GGUF's Q8_0;
   * 18 B per 32 int4 weights, as Q4_0) behind a Cast to float32, which ORT folds into a float32 initializer when the
   * session is created, so the kernels read the same float32 scales as with 'float32' (the default). The weights
   * are rounded against the float16 scale, so what the file holds is exactly what runs.
   */
  scaleType?: 'float32' | 'float16';
  /**
   * 'signed-max' (default): the block's largest-magnitude value maps exactly onto q = 0 (scale = v / -2^(bits-1)),
   * as GGUF's Q4_0. 'amax': scale = max|v| / (2^(bits-1) - 1), q symmetric around the zero point, as GGUF's Q8_0.
   */
  scaleRule?: 'signed-max' | 'amax';
  /** Bits for one weight by name (e.g. 8 for the vocabulary table in a 4-bit model); default `bits`. */
  bitsOf?: (weightName: string) => 4 | 8 | undefined;
}

export interface QuantizedWeight {
  packed: Uint8Array;
  scales: Float32Array;
  blocks: number;
  blobSize: number;
}

/**
 * Quantize a row-major [n][k] float matrix (rows = output features). `roundScale` maps each block scale onto the
 * value the file will hold (float16 rounding), so the codes are chosen against the scale the kernel reads.
 */
export function quantizeBlocks(
  w: ArrayLike<number>,
  n: number,
  k: number,
  bits: 4 | 8,
  blockSize: number,
  how: { roundScale?: (s: number) => number; scaleRule?: 'signed-max' | 'amax' } = {},
): QuantizedWeight {
  const amaxRule = how.scaleRule === 'amax';
  const blocks = Math.ceil(k / blockSize);
  const blobSize = (blockSize * bits) / 8;
  const zero = 1 << (bits - 1);
  const qmax = (1 << bits) - 1;
  const packed = new Uint8Array(n * blocks * blobSize);
  const scales = new Float32Array(n * blocks);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < blocks; b++) {
      let vmax = 0;
      for (let i = 0; i < blockSize; i++) {
        const c = b * blockSize + i;
        if (c >= k) break;
        const v = w[r * k + c]!;
        if (Math.abs(v) > Math.abs(vmax)) vmax = v;
      }
      const raw = amaxRule ? Math.abs(vmax) / (zero - 1) : vmax / -zero;
      const scale = how.roundScale ? how.roundScale(raw) : Math.fround(raw);
      scales[r * blocks + b] = scale;
      const inv = scale === 0 ? 0 : 1 / scale;
      const base = (r * blocks + b) * blobSize;
      for (let i = 0; i < blockSize; i++) {
        const c = b * blockSize + i;
        const q = c < k ? Math.min(qmax, Math.max(0, Math.round(w[r * k + c]! * inv) + zero)) : zero;
        if (bits === 8) packed[base + i] = q;
        else packed[base + (i >> 1)]! |= i & 1 ? q << 4 : q;
      }
    }
  }
  return { packed, scales, blocks, blobSize };
}

function floatValues(h: HostTensor): ArrayLike<number> {
  if (h.dtype === 'float32' || h.dtype === 'float64') return h.data as Float32Array;
  if (h.dtype === 'float16') return Array.from(h.data as Uint16Array, fromHalf);
  return toNumbers(h);
}

interface Quantized {
  b: Tensor;
  s: Tensor;
  n: number;
  k: number;
  blocks: number;
  bits: 4 | 8;
}

/** Find the frozen weight behind a MatMul's B input: W [K,N], Transpose(W [N,K]), optionally through Casts. */
function weightOf(graph: Graph, t: Tensor): { value: HostTensor; name: string; transposed: boolean } | undefined {
  let transposed = false;
  let cur = t;
  for (let hops = 0; hops < 3; hops++) {
    const w = graph.weights.find((e) => e.tensor === cur && !e.trainable);
    if (w) return w.value.dims.length === 2 ? { value: w.value, name: w.name, transposed } : undefined;
    const p = cur.producer;
    if (!p) return;
    if (p.op === 'Cast') cur = p.inputs[0]!;
    else if (p.op === 'Transpose' && !transposed) {
      const perm = p.attrs.perm;
      if (perm?.kind !== 'ints' || perm.v[0] !== 1 || perm.v[1] !== 0) return;
      transposed = true;
      cur = p.inputs[0]!;
    } else return;
  }
  return;
}

/** Replace eligible MatMuls (and, with `gather`, embedding Gathers); returns the new nodes and their initializers. */
export function quantizeMatMuls(
  graph: Graph,
  nodes: EmitNode[],
  opts: QuantizeOptions,
): { nodes: EmitNode[]; inits: Map<Tensor, HostTensor> } {
  const bits = opts.bits ?? 4;
  const blockSize = opts.blockSize ?? 32;
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError(`quantize: blockSize ${blockSize} must be a power of two >= 16`);
  }
  const inits = new Map<Tensor, HostTensor>();
  // keyed by the source weight, so a tied embedding and LM head ([V, K] read as the head's [N, K]) share one copy
  const cache = new Map<HostTensor, Quantized>();
  // float16 scales: the Cast nodes that widen them, placed before every consumer
  const casts: EmitNode[] = [];
  let fake = -1;
  const tensor = (dtype: HostTensor['dtype'], dims: number[]) => new Tensor(fake--, dtype, dims, graph, null);
  const half = opts.scaleType === 'float16';
  const roundScale = half ? (v: number) => fromHalf(toHalf(v)) : undefined;
  const quantized = (value: HostTensor, name: string, n: number, k: number, transposed: boolean): Quantized => {
    let q = cache.get(value);
    if (q && q.n === n) return q;
    const vals = floatValues(value);
    let rows: ArrayLike<number> = vals;
    if (!transposed) {
      const t = new Float32Array(n * k);
      for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) t[j * k + i] = vals[i * n + j]!;
      rows = t;
    }
    const wBits = opts.bitsOf?.(name) ?? bits;
    const qw = quantizeBlocks(rows, n, k, wBits, blockSize, { roundScale, scaleRule: opts.scaleRule });
    const b = tensor('uint8', [n, qw.blocks, qw.blobSize]);
    const s = tensor('float32', [n * qw.blocks]);
    inits.set(b, { dtype: 'uint8', dims: [n, qw.blocks, qw.blobSize], data: qw.packed });
    if (half) {
      const s16 = tensor('float16', [n * qw.blocks]);
      inits.set(s16, { dtype: 'float16', dims: [n * qw.blocks], data: Uint16Array.from(qw.scales, toHalf) });
      casts.push({ op: 'Cast', domain: '', inputs: [s16], outputs: [s], attrs: { to: { kind: 'int', v: 1 } } });
    } else inits.set(s, { dtype: 'float32', dims: [n * qw.blocks], data: qw.scales });
    q = { b, s, n, k, blocks: qw.blocks, bits: wBits };
    cache.set(value, q);
    return q;
  };
  const out = nodes.flatMap((node): EmitNode[] => {
    if (opts.gather && node.op === 'Gather' && !node.domain) return quantizedGather(node) ?? [node];
    if (node.op !== 'MatMul' || node.domain) return [node];
    const [x, bIn] = node.inputs;
    if (!x || !bIn || x.dtype !== 'float32' || bIn.rank !== 2) return [node];
    const found = weightOf(graph, bIn);
    if (!found) return [node];
    const dims = found.value.dims as [number, number];
    const [n, k] = found.transposed ? dims : [dims[1], dims[0]];
    if (n * k < (opts.minElements ?? 0)) return [node];
    const q = quantized(found.value, found.name, n, k, found.transposed);
    return [
      {
        op: 'MatMulNBits',
        domain: 'com.microsoft',
        inputs: [x, q.b, q.s],
        outputs: node.outputs,
        attrs: {
          K: { kind: 'int', v: k },
          N: { kind: 'int', v: n },
          bits: { kind: 'int', v: q.bits },
          block_size: { kind: 'int', v: blockSize },
          accuracy_level: { kind: 'int', v: opts.accuracyLevel ?? 0 },
        },
      },
    ];
  });

  /**
   * Gather(table [V, K], ids) -> GatherBlockQuantized over MatMulNBits' own [V, blocks, blob] bytes, read with
   * quantize_axis 2 (one block per row of that axis), so the bytes need no reshaped copy; only the small scales are
   * viewed as [V, blocks, 1] (the op wants them at data's rank). The [.., blocks, block] result is viewed as [.., K].
   * ORT 1.30's CPU kernel takes uint8 data at bits 4 and 8 with MatMulNBits' implicit zero point 2^(bits-1).
   */
  function quantizedGather(node: EmitNode): EmitNode[] | undefined {
    const [table, ids] = node.inputs;
    const axis = node.attrs.axis;
    if (!table || !ids || (axis?.kind === 'int' && axis.v !== 0) || table.rank !== 2) return;
    const entry = graph.weights.find((e) => e.tensor === table && !e.trainable);
    const w = entry?.value;
    if (!entry || !w || w.dims.length !== 2 || (w.dtype !== 'float32' && w.dtype !== 'float16')) return;
    const [n, k] = w.dims as [number, number];
    if (k % blockSize !== 0 || n * k < (opts.minElements ?? 0)) return;
    const q = quantized(w, entry.name, n, k, true);
    const sShape = tensor('int64', [3]);
    inits.set(sShape, { dtype: 'int64', dims: [3], data: BigInt64Array.from([n, q.blocks, 1].map(BigInt)) });
    const s3 = tensor('float32', [n, q.blocks, 1]);
    const g = tensor('float32', [...ids.shape.map((d) => (typeof d === 'number' ? d : -1)), q.blocks, blockSize]);
    // 0 = keep that dimension of the gathered ids
    const oShape = tensor('int64', [ids.rank + 1]);
    inits.set(oShape, {
      dtype: 'int64',
      dims: [ids.rank + 1],
      data: BigInt64Array.from([...Array<bigint>(ids.rank).fill(0n), BigInt(k)]),
    });
    return [
      { op: 'Reshape', domain: '', inputs: [q.s, sShape], outputs: [s3], attrs: {} },
      {
        op: 'GatherBlockQuantized',
        domain: 'com.microsoft',
        inputs: [q.b, ids, s3],
        outputs: [g],
        attrs: {
          bits: { kind: 'int', v: q.bits },
          block_size: { kind: 'int', v: blockSize },
          gather_axis: { kind: 'int', v: 0 },
          quantize_axis: { kind: 'int', v: 2 },
        },
      },
      { op: 'Reshape', domain: '', inputs: [g, oShape], outputs: node.outputs, attrs: {} },
    ];
  }
  return { nodes: [...casts, ...out], inits };
}
