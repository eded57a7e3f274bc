/**
 * GGUF v3 container (ggml docs/gguf.md) and the ggml block quantisations Loom writes.
 *
 * File layout: magic "GGUF", u32 version 3, u64 tensor count, u64 metadata count, the metadata key/values, one
 * info record per tensor (name, n_dims, ne[] with ne[0] the fastest-varying axis — the reverse of a PyTorch shape —,
 * ggml type, offset into the data section), padding to `general.alignment` (32), then each tensor's bytes at its
 * offset (each offset a multiple of the alignment). Everything little-endian.
 *
 * Blocks (32 values along ne[0]):
 *   Q8_0  f16 d, int8 q[32]            d = max|x| / 127, q = round(x / d); x ≈ d * q
 *   Q4_0  f16 d, u8 qs[16]             d = m / -8 with m the value of largest magnitude (sign kept),
 *                                      q = min(15, trunc(x / d + 8.5)); qs[j] = q[j] | q[j + 16] << 4; x ≈ d * (q - 8)
 *   Q5_0, Q4_K, Q6_K (the Q4_K_M mix): see kquants.ts
 *
 * API:
 *   new GgufWriter(); w.kv(key, value); w.tensor(name, shapePyTorch, GgmlType, data); w.write(path)
 *   quantize(data, type) -> Uint8Array; dequantize(bytes, type, n) -> Float32Array (for round-trip checks)
 *   tensorBytes(type, n) -> bytes of n values of a type (blocks of 32, or 256 for the K-quants)
 *   readGguf(path) -> { kv, tensors } (header only; tests and `loom chat` inspect files with it)
 */
import { closeSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { LoomError } from '../../core/errors.ts';
import { f16ToF32, f32ToF16, numberToF16 } from '../../models/halfs.ts';
import {
  dequantizeQ4K,
  dequantizeQ5_0,
  dequantizeQ6K,
  Q4_K_BYTES,
  Q5_0_BYTES,
  Q6_K_BYTES,
  QK_K,
  quantizeQ4K,
  quantizeQ5_0,
  quantizeQ6K,
} from './kquants.ts';

/** ggml_type ids (ggml.h). */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2, Q5_0: 6, Q8_0: 8, Q4_K: 12, Q6_K: 14 } as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];
const TYPE_NAME: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  6: 'Q5_0',
  8: 'Q8_0',
  12: 'Q4_K',
  14: 'Q6_K',
};

/** Metadata value types (gguf.md `gguf_metadata_value_type`). */
const T = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  U64: 10,
  I64: 11,
  F64: 12,
};

export type GgufValue =
  | { type: 'u32' | 'i32' | 'f32' | 'u64'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'i32[]' | 'f32[]'; value: ArrayLike<number> };

const ALIGNMENT = 32;
const QK = 32;

function blockBytes(type: GgmlType): number {
  return type === GgmlType.Q8_0 ? 34 : type === GgmlType.Q4_0 ? 18 : type === GgmlType.F16 ? 2 : 4;
}

/** Values per block: 256 for the K-quants, 32 for the other block types, 1 for F32/F16. */
function blockValues(type: GgmlType): number {
  if (type === GgmlType.Q4_K || type === GgmlType.Q6_K) return QK_K;
  return type === GgmlType.F32 || type === GgmlType.F16 ? 1 : QK;
}

export function tensorBytes(type: GgmlType, n: number): number {
  const per =
    type === GgmlType.Q4_K
      ? Q4_K_BYTES
      : type === GgmlType.Q6_K
        ? Q6_K_BYTES
        : type === GgmlType.Q5_0
          ? Q5_0_BYTES
          : blockBytes(type);
  return (n / blockValues(type)) * per;
}

function quantize(x: Float32Array, type: GgmlType): Uint8Array {
  if (type === GgmlType.F32) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (x.length % blockValues(type) !== 0) {
    throw new LoomError('INTERNAL', `quantize: ${x.length} values is not a multiple of ${blockValues(type)}`);
  }
  if (type === GgmlType.Q4_K) return quantizeQ4K(x);
  if (type === GgmlType.Q6_K) return quantizeQ6K(x);
  if (type === GgmlType.Q5_0) return quantizeQ5_0(x);
  if (type === GgmlType.F16) {
    const h = f32ToF16(x);
    return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
  }
  if (x.length % QK !== 0) throw new LoomError('INTERNAL', `quantize: ${x.length} values is not a multiple of ${QK}`);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * blockBytes(type));
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const o = b * blockBytes(type);
    const base = b * QK;
    if (type === GgmlType.Q8_0) {
      let amax = 0;
      for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
      const d = amax / 127;
      const id = d ? 1 / d : 0;
      dv.setUint16(o, numberToF16(d), true);
      for (let j = 0; j < QK; j++) {
        // ggml: roundf (half away from zero) of the float32 product
        const v = Math.fround(x[base + j]! * id);
        dv.setInt8(o + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));
      }
    } else {
      let amax = 0;
      let m = 0;
      for (let j = 0; j < QK; j++) {
        const v = x[base + j]!;
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          m = v;
        }
      }
      const d = m / -8;
      const id = d ? 1 / d : 0;
      dv.setUint16(o, numberToF16(d), true);
      for (let j = 0; j < QK / 2; j++) {
        // Math.fround: ggml computes x * id in float32 before the truncation
        const q0 = Math.min(15, Math.trunc(Math.fround(x[base + j]! * id) + 8.5));
        const q1 = Math.min(15, Math.trunc(Math.fround(x[base + j + QK / 2]! * id) + 8.5));
        out[o + 2 + j] = q0 | (q1 << 4);
      }
    }
  }
  return out;
}

export function dequantize(bytes: Uint8Array, type: GgmlType, n: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type === GgmlType.F32) return new Float32Array(bytes.slice(0, n * 4).buffer);
  if (type === GgmlType.F16) return f16ToF32(new Uint16Array(bytes.slice(0, n * 2).buffer));
  if (type === GgmlType.Q4_K) return dequantizeQ4K(bytes, n);
  if (type === GgmlType.Q6_K) return dequantizeQ6K(bytes, n);
  if (type === GgmlType.Q5_0) return dequantizeQ5_0(bytes, n);
  const out = new Float32Array(n);
  const bb = blockBytes(type);
  for (let b = 0; b < n / QK; b++) {
    const d = f16ToF32(new Uint16Array([dv.getUint16(b * bb, true)]))[0]!;
    for (let j = 0; j < QK; j++) {
      if (type === GgmlType.Q8_0) out[b * QK + j] = d * dv.getInt8(b * bb + 2 + j);
      else {
        const byte = bytes[b * bb + 2 + (j % 16)]!;
        out[b * QK + j] = d * ((j < 16 ? byte & 15 : byte >> 4) - 8);
      }
    }
  }
  return out;
}

interface PendingTensor {
  name: string;
  ne: number[];
  type: GgmlType;
  bytes: Uint8Array;
}

class Buf {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  num(kind: 'u32' | 'i32' | 'f32' | 'u64' | 'u8', v: number): void {
    const b = new Uint8Array(kind === 'u64' ? 8 : kind === 'u8' ? 1 : 4);
    const dv = new DataView(b.buffer);
    if (kind === 'u32') dv.setUint32(0, v, true);
    else if (kind === 'i32') dv.setInt32(0, v, true);
    else if (kind === 'f32') dv.setFloat32(0, v, true);
    else if (kind === 'u8') dv.setUint8(0, v);
    else dv.setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.num('u64', b.length);
    this.push(b);
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

export class GgufWriter {
  private kvs: [string, GgufValue][] = [];
  private tensors: PendingTensor[] = [];

  kv(key: string, v: GgufValue): this {
    this.kvs.push([key, v]);
    return this;
  }

  /** `shape` in PyTorch order ([out, in]); stored reversed as ggml's ne. */
  tensor(name: string, shape: readonly number[], type: GgmlType, data: Float32Array): this {
    // ne[0] (the last PyTorch axis) must hold whole blocks; callers pick a fitting type (llama.ts's Q4_K_M mix)
    const t = shape.length > 0 && shape[shape.length - 1]! % blockValues(type) !== 0 ? GgmlType.F32 : type;
    this.tensors.push({ name, ne: [...shape].reverse(), type: t, bytes: quantize(data, t) });
    return this;
  }

  tensorTypes(): Record<string, string> {
    return Object.fromEntries(this.tensors.map((t) => [t.name, TYPE_NAME[t.type]!]));
  }

  header(): Uint8Array {
    const h = new Buf();
    h.push(Buffer.from('GGUF', 'latin1'));
    h.num('u32', 3);
    h.num('u64', this.tensors.length);
    h.num('u64', this.kvs.length);
    for (const [k, v] of this.kvs) {
      h.str(k);
      writeValue(h, v);
    }
    let off = 0;
    for (const t of this.tensors) {
      h.str(t.name);
      h.num('u32', t.ne.length);
      for (const d of t.ne) h.num('u64', d);
      h.num('u32', t.type);
      h.num('u64', off);
      off += pad(t.bytes.length);
    }
    const pd = pad(h.length) - h.length;
    if (pd) h.push(new Uint8Array(pd));
    return h.bytes();
  }

  /** Writes to `path.tmp` then renames, so a crash never leaves a truncated .gguf that loads. Returns bytes. */
  write(path: string): number {
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w');
    let total = 0;
    try {
      const h = this.header();
      writeSync(fd, h);
      total += h.length;
      for (const t of this.tensors) {
        writeSync(fd, t.bytes);
        const p = pad(t.bytes.length) - t.bytes.length;
        if (p) writeSync(fd, new Uint8Array(p));
        total += t.bytes.length + p;
      }
    } catch (e) {
      throw new LoomError('OUTPUT_WRITE', `cannot write ${path}: ${(e as Error).message}`, { file: path });
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    return total;
  }
}

function pad(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}

function writeValue(h: Buf, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      h.num('u32', T.U32);
      h.num('u32', v.value);
      return;
    case 'i32':
      h.num('u32', T.I32);
      h.num('i32', v.value);
      return;
    case 'f32':
      h.num('u32', T.F32);
      h.num('f32', v.value);
      return;
    case 'u64':
      h.num('u32', T.U64);
      h.num('u64', v.value);
      return;
    case 'bool':
      h.num('u32', T.BOOL);
      h.num('u8', v.value ? 1 : 0);
      return;
    case 'string':
      h.num('u32', T.STRING);
      h.str(v.value);
      return;
    case 'string[]':
      h.num('u32', T.ARRAY);
      h.num('u32', T.STRING);
      h.num('u64', v.value.length);
      for (const s of v.value) h.str(s);
      return;
    case 'i32[]':
    case 'f32[]': {
      h.num('u32', T.ARRAY);
      h.num('u32', v.type === 'i32[]' ? T.I32 : T.F32);
      h.num('u64', v.value.length);
      const a = v.type === 'i32[]' ? Int32Array.from(v.value) : Float32Array.from(v.value);
      h.push(new Uint8Array(a.buffer));
      return;
    }
  }
}

export interface GgufHeader {
  version: number;
  kv: Map<string, unknown>;
  tensors: { name: string; ne: number[]; type: string; offset: number }[];
  /** File offset of the tensor data section (tensor offsets are relative to it). */
  dataStart: number;
}

/** Reads the header of a GGUF file (metadata and tensor infos; arrays of strings/numbers come back as arrays). */
export function readGguf(path: string): GgufHeader {
  const fd = openSync(path, 'r');
  let pos = 0;
  const read = (n: number): Buffer => {
    const b = Buffer.alloc(n);
    const got = readSync(fd, b, 0, n, pos);
    if (got < n)
      throw new LoomError('INPUT_MALFORMED', `${path}: truncated GGUF header at byte ${pos}`, { file: path });
    pos += n;
    return b;
  };
  const u32 = () => read(4).readUInt32LE(0);
  const u64 = () => Number(read(8).readBigUInt64LE(0));
  const str = () => read(u64()).toString('utf8');
  const scalar = (t: number): unknown => {
    switch (t) {
      case T.U8:
        return read(1).readUInt8(0);
      case T.I8:
        return read(1).readInt8(0);
      case T.U16:
        return read(2).readUInt16LE(0);
      case T.I16:
        return read(2).readInt16LE(0);
      case T.U32:
        return u32();
      case T.I32:
        return read(4).readInt32LE(0);
      case T.F32:
        return read(4).readFloatLE(0);
      case T.BOOL:
        return read(1).readUInt8(0) !== 0;
      case T.STRING:
        return str();
      case T.U64:
        return u64();
      case T.I64:
        return Number(read(8).readBigInt64LE(0));
      case T.F64:
        return read(8).readDoubleLE(0);
      case T.ARRAY: {
        const et = u32();
        const n = u64();
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(scalar(et));
        return out;
      }
      default:
        throw new LoomError('INPUT_MALFORMED', `${path}: unknown GGUF value type ${t} at byte ${pos}`, { file: path });
    }
  };
  try {
    if (read(4).toString('latin1') !== 'GGUF') {
      throw new LoomError('INPUT_FORMAT', `${path} is not a GGUF file (bad magic)`, { file: path });
    }
    const version = u32();
    const nt = u64();
    const nkv = u64();
    const kv = new Map<string, unknown>();
    for (let i = 0; i < nkv; i++) {
      const k = str();
      kv.set(k, scalar(u32()));
    }
    const tensors: GgufHeader['tensors'] = [];
    for (let i = 0; i < nt; i++) {
      const name = str();
      const nd = u32();
      const ne: number[] = [];
      for (let d = 0; d < nd; d++) ne.push(u64());
      const type = TYPE_NAME[u32()] ?? 'other';
      tensors.push({ name, ne, type, offset: u64() });
    }
    return { version, kv, tensors, dataStart: pad(pos) };
  } finally {
    closeSync(fd);
  }
}
