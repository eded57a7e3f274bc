/**
 * safetensors read/write (https://github.com/huggingface/safetensors format: u64 LE header size, JSON header,
 * raw little-endian tensor bytes). Reads go through file offsets (header first, then one tensor at a time), so
 * a large checkpoint never sits in memory as a whole; writes stream one tensor at a time to a temp file that is
 * renamed into place.
 *
 * API:
 *   SafetensorsReader.open(path)   path = a .safetensors file, a model.safetensors.index.json, or a folder holding
 *                                  either; sharded checkpoints are one reader over all shards.
 *     .names() / .has(name) / .info(name) -> { dtype, shape, file, start, byteLength }
 *     .readRaw(name)      -> { dtype, shape, data: Uint8Array }     (bytes as stored)
 *     .readFloat32(name)  -> { dtype: 'float32', dims, data: Float32Array }  (F32/F16/BF16/F64 converted)
 *     .close()
 *   writeSafetensors(path, tensors, { dtype?, metadata? })          one file
 *   writeSharded(dir, tensors, { maxShardBytes?, dtype?, metadata? }) model.safetensors, or model-0000k-of-0000n
 *                                  shards + model.safetensors.index.json when larger than maxShardBytes
 * `tensors` is a list of [name, TensorData | LazyTensorData] (order kept) or a record. Lazy tensors are loaded
 * only when written (one tensor in memory at a time). Float32 data may be stored as F16/BF16 (`dtype` option);
 * 16-bit data given as Uint16Array is written as is with its declared dtype.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LoomError } from '../core/errors.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './halfs.ts';

export type StDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<StDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface StTensorInfo {
  name: string;
  dtype: StDType;
  shape: number[];
  /** File holding the tensor. */
  file: string;
  /** Absolute byte offset of the tensor's data in `file`. */
  start: number;
  byteLength: number;
}

export interface RawTensor {
  dtype: StDType;
  shape: number[];
  data: Uint8Array;
}

/** Structurally the engine's HostTensor for float32. */
export interface Float32Tensor {
  dtype: 'float32';
  dims: number[];
  data: Float32Array;
}

/** A named float32 tensor: trainable parameters, optimiser moments, adapter weights. */
export interface Float32Named {
  name: string;
  dims: number[];
  data: Float32Array;
}

export type TensorArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | BigInt64Array;

/** What the writers accept: data plus its stored dtype (Float32Array may be narrowed by the `dtype` option). */
export interface TensorData {
  dtype?: StDType | 'float32' | 'float16' | 'bfloat16';
  dims?: number[];
  shape?: number[];
  data: TensorArray;
}

/**
 * A tensor produced only when the writer reaches it, so a large checkpoint can be written with one tensor in
 * memory at a time. `dtype` is the dtype of what `load()` returns.
 */
export interface LazyTensorData {
  dtype: StDType | 'float32' | 'float16' | 'bfloat16';
  shape: number[];
  load: () => TensorArray;
}

export type WritableTensor = TensorData | LazyTensorData;

const isLazy = (t: WritableTensor): t is LazyTensorData => typeof (t as LazyTensorData).load === 'function';

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function invalid(message: string, file: string, field?: string, hint?: string): LoomError {
  return new LoomError('MODEL_INVALID', message, { file, field, hint });
}

/** Reads `length` bytes at `position`, in chunks (readSync caps one call near 2 GiB). */
function readExact(fd: number, length: number, position: number, file: string, what: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(length - done, 1 << 30), position + done);
    if (n === 0) throw invalid(`${what}: file ends after ${position + done} bytes (truncated)`, file, what);
    done += n;
  }
  return out;
}

interface OpenFile {
  path: string;
  fd: number;
  size: number;
}

function parseHeader(
  path: string,
  fd: number,
  size: number,
): { entries: StTensorInfo[]; metadata: Record<string, string> } {
  if (size < 8)
    throw invalid(
      `not a safetensors file: ${size} bytes (truncated)`,
      path,
      undefined,
      're-download or re-save the file',
    );
  const lenBytes = readExact(fd, 8, 0, path, 'header');
  const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (headerLen > size - 8 || headerLen > 100 * 1024 * 1024) {
    throw invalid(
      `header length ${headerLen} exceeds the file size ${size} (truncated or not safetensors)`,
      path,
      undefined,
      're-download or re-save the file',
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(readExact(fd, headerLen, 8, path, 'header')));
  } catch (e) {
    throw invalid(
      `header is not valid JSON: ${(e as Error).message}`,
      path,
      undefined,
      're-download or re-save the file',
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw invalid('header is not a JSON object', path);
  }
  const dataStart = 8 + headerLen;
  const dataSize = size - dataStart;
  const entries: StTensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) {
      throw invalid(`tensor ${name}: unsupported dtype ${JSON.stringify(e?.dtype)}`, path, name);
    }
    const dtype = e.dtype as StDType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw invalid(`tensor ${name}: bad shape ${JSON.stringify(e.shape)}`, path, name);
    }
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((x) => Number.isInteger(x) && x >= 0) ||
      off[1] < off[0]
    ) {
      throw invalid(`tensor ${name}: bad data_offsets ${JSON.stringify(off)}`, path, name);
    }
    const shape = e.shape as number[];
    const byteLength = (off[1] as number) - (off[0] as number);
    const want = numel(shape) * DTYPE_BYTES[dtype];
    if (byteLength !== want) {
      throw invalid(
        `tensor ${name}: data_offsets span ${byteLength} bytes but ${dtype}${JSON.stringify(shape)} needs ${want}`,
        path,
        name,
      );
    }
    if ((off[1] as number) > dataSize) {
      throw invalid(
        `tensor ${name}: data ends at byte ${dataStart + (off[1] as number)} but the file has ${size} bytes (truncated)`,
        path,
        name,
        're-download or re-save the file',
      );
    }
    entries.push({ name, dtype, shape, file: path, start: dataStart + (off[0] as number), byteLength });
  }
  return { entries, metadata };
}

export class SafetensorsReader {
  readonly files: string[];
  readonly metadata: Record<string, string>;
  private readonly tensors = new Map<string, StTensorInfo>();
  private readonly open = new Map<string, OpenFile>();

  private constructor(files: string[], weightMap?: Record<string, string>) {
    this.files = files;
    let metadata: Record<string, string> = {};
    for (const file of files) {
      const fd = openSync(file, 'r');
      const size = fstatSync(fd).size;
      this.open.set(file, { path: file, fd, size });
      let h: ReturnType<typeof parseHeader>;
      try {
        h = parseHeader(file, fd, size);
      } catch (e) {
        this.close();
        throw e;
      }
      if (file === files[0]) metadata = h.metadata;
      for (const e of h.entries) {
        if (this.tensors.has(e.name)) {
          this.close();
          throw invalid(`tensor ${e.name} appears in two shards`, file, e.name);
        }
        this.tensors.set(e.name, e);
      }
    }
    this.metadata = metadata;
    if (weightMap) {
      for (const [name, shard] of Object.entries(weightMap)) {
        const t = this.tensors.get(name);
        if (!t) {
          this.close();
          throw invalid(
            `index names tensor ${name} in ${shard} but that shard does not hold it`,
            join(dirname(files[0] ?? ''), shard),
            name,
          );
        }
      }
    }
  }

  /** Opens a .safetensors file, an index .json, or a folder with model.safetensors(.index.json). */
  static open(path: string): SafetensorsReader {
    if (!existsSync(path)) throw new LoomError('INPUT_NOT_FOUND', `no such file or folder: ${path}`, { file: path });
    if (statSync(path).isDirectory()) {
      const index = join(path, 'model.safetensors.index.json');
      if (existsSync(index)) return SafetensorsReader.open(index);
      const single = join(path, 'model.safetensors');
      if (existsSync(single)) return new SafetensorsReader([single]);
      const other = readdirSync(path).find((f) => /\.(bin|pt|pth|gguf|ckpt)$/.test(f));
      throw invalid(
        'folder has neither model.safetensors nor model.safetensors.index.json',
        path,
        undefined,
        other
          ? `${other} is not read: Loom reads safetensors only (convert with transformers' save_pretrained(dir, safe_serialization=True))`
          : 'create a model with `loom model new <dir>` or download one with `loom pull <repo>`',
      );
    }
    if (path.endsWith('.json')) {
      let index: { weight_map?: Record<string, string> };
      try {
        index = JSON.parse(readFileSync(path, 'utf8'));
      } catch (e) {
        throw invalid(`index is not valid JSON: ${(e as Error).message}`, path);
      }
      const map = index.weight_map;
      if (!map || typeof map !== 'object') throw invalid('index has no weight_map', path, 'weight_map');
      const dir = dirname(path);
      const shards = [...new Set(Object.values(map))].sort();
      for (const s of shards) {
        if (!existsSync(join(dir, s))) {
          throw invalid(
            `shard ${s} named by the index is missing`,
            join(dir, s),
            undefined,
            'download the missing shard',
          );
        }
      }
      return new SafetensorsReader(
        shards.map((s) => join(dir, s)),
        map,
      );
    }
    return new SafetensorsReader([path]);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): StTensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw invalid(`tensor ${name} not found`, this.files.join(', '), name);
    return t;
  }

  /** Total bytes of tensor data across shards. */
  dataBytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteLength;
    return n;
  }

  readRaw(name: string): RawTensor {
    const t = this.info(name);
    const f = this.open.get(t.file);
    if (!f) throw new LoomError('INTERNAL', `reader closed: ${t.file}`);
    return { dtype: t.dtype, shape: [...t.shape], data: readExact(f.fd, t.byteLength, t.start, t.file, name) };
  }

  /** The tensor as float32 (F16/BF16/F64 converted; integer dtypes rejected). */
  readFloat32(name: string): Float32Tensor {
    const raw = this.readRaw(name);
    const buf = raw.data.buffer as ArrayBuffer;
    let data: Float32Array;
    switch (raw.dtype) {
      case 'F32':
        data = new Float32Array(buf, raw.data.byteOffset, raw.data.byteLength / 4);
        break;
      case 'F16':
        data = f16ToF32(new Uint16Array(buf, raw.data.byteOffset, raw.data.byteLength / 2));
        break;
      case 'BF16':
        data = bf16ToF32(new Uint16Array(buf, raw.data.byteOffset, raw.data.byteLength / 2));
        break;
      case 'F64':
        data = Float32Array.from(new Float64Array(buf, raw.data.byteOffset, raw.data.byteLength / 8));
        break;
      default:
        throw invalid(`tensor ${name} has dtype ${raw.dtype}, not a float type`, this.info(name).file, name);
    }
    return { dtype: 'float32', dims: raw.shape, data };
  }

  close(): void {
    for (const f of this.open.values()) closeSync(f.fd);
    this.open.clear();
  }
}

function normDtype(d: TensorData['dtype'], data: TensorArray): StDType {
  if (d === 'float32') return 'F32';
  if (d === 'float16') return 'F16';
  if (d === 'bfloat16') return 'BF16';
  if (d) return d;
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Uint16Array) return 'F16';
  return 'U8';
}

/** Bytes to store for one tensor, converting float32 to F16/BF16 when `target` asks for it. */
function encodeTensor(
  name: string,
  t: TensorData,
  target?: 'F32' | 'F16' | 'BF16',
): { dtype: StDType; shape: number[]; bytes: Uint8Array } {
  const shape = t.shape ?? t.dims;
  if (!shape) throw new LoomError('MODEL_SHAPE', `tensor ${name}: no shape`, { field: name });
  let dtype = normDtype(t.dtype, t.data);
  let data: TensorArray = t.data;
  if (target && dtype === 'F32' && target !== 'F32') {
    data = target === 'F16' ? f32ToF16(data as Float32Array) : f32ToBf16(data as Float32Array);
    dtype = target;
  }
  if (numel(shape) * DTYPE_BYTES[dtype] !== data.byteLength) {
    throw new LoomError(
      'MODEL_SHAPE',
      `tensor ${name}: ${dtype}${JSON.stringify(shape)} needs ${numel(shape) * DTYPE_BYTES[dtype]} bytes, data has ${data.byteLength}`,
      { field: name },
    );
  }
  return { dtype, shape: [...shape], bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

type Tensors = Iterable<[string, WritableTensor]> | Record<string, WritableTensor>;

function entriesOf(tensors: Tensors): [string, WritableTensor][] {
  if (Symbol.iterator in tensors) return [...(tensors as Iterable<[string, WritableTensor]>)];
  return Object.entries(tensors);
}

function storedDtype(t: WritableTensor, target?: 'F32' | 'F16' | 'BF16'): StDType {
  const d = isLazy(t) ? normDtype(t.dtype, new Uint8Array(0)) : normDtype(t.dtype, t.data);
  return target && d === 'F32' ? target : d;
}

const shapeOf = (t: WritableTensor): number[] => (isLazy(t) ? t.shape : (t.shape ?? t.dims ?? []));

export interface WriteOptions {
  /** Store float32 tensors as this dtype. */
  dtype?: 'F32' | 'F16' | 'BF16';
  metadata?: Record<string, string>;
}

/** Writes one safetensors file atomically; tensors are converted and written one at a time. */
export function writeSafetensors(path: string, tensors: Tensors, opts: WriteOptions = {}): void {
  const list = entriesOf(tensors);
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  else header.__metadata__ = { format: 'pt' };
  let offset = 0;
  for (const [name, t] of list) {
    const dtype = storedDtype(t, opts.dtype);
    const shape = shapeOf(t);
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so tensor data starts 8-byte aligned (as the reference writer does).
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad) headerBytes = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
    writeSync(fd, len);
    writeSync(fd, headerBytes);
    for (const [name, t] of list) {
      const data: TensorData = isLazy(t) ? { dtype: t.dtype, shape: t.shape, data: t.load() } : t;
      const { bytes } = encodeTensor(name, data, opts.dtype);
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {}
    rmSync(tmp, { force: true });
    if (e instanceof LoomError) throw e;
    throw new LoomError('OUTPUT_WRITE', `cannot write ${path}: ${(e as Error).message}`, { file: path, cause: e });
  }
}

export interface ShardOptions extends WriteOptions {
  /** Largest shard in bytes (HF default is 5 GB). */
  maxShardBytes?: number;
}

/**
 * Writes `model.safetensors`, or shards `model-00001-of-0000N.safetensors` plus `model.safetensors.index.json`
 * when the data exceeds maxShardBytes. Returns the file names written.
 */
export function writeSharded(dir: string, tensors: Tensors, opts: ShardOptions = {}): string[] {
  const list = entriesOf(tensors);
  const max = opts.maxShardBytes ?? 5 * 1024 ** 3;
  const shards: [string, WritableTensor][][] = [[]];
  let cur = 0;
  let total = 0;
  for (const e of list) {
    const t = e[1];
    const bytes = numel(shapeOf(t)) * DTYPE_BYTES[storedDtype(t, opts.dtype)];
    const last = shards[shards.length - 1] as [string, WritableTensor][];
    if (cur + bytes > max && last.length > 0) {
      shards.push([e]);
      cur = bytes;
    } else {
      last.push(e);
      cur += bytes;
    }
    total += bytes;
  }
  mkdirSync(dir, { recursive: true });
  const staleIndex = join(dir, 'model.safetensors.index.json');
  if (shards.length === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), shards[0] as [string, WritableTensor][], opts);
    rmSync(staleIndex, { force: true });
    return ['model.safetensors'];
  }
  const n = shards.length;
  const names = shards.map(
    (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`,
  );
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => {
    writeSafetensors(join(dir, names[i] as string), s, opts);
    for (const [name] of s) weightMap[name] = names[i] as string;
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  const tmp = `${staleIndex}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, `${JSON.stringify(index, null, 2)}\n`);
  closeSync(fd);
  renameSync(tmp, staleIndex);
  rmSync(join(dir, 'model.safetensors'), { force: true });
  return [...names, basename(staleIndex)];
}
