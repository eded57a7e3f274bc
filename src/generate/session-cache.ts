/**
 * A content-keyed cache of the ONNX models CausalLM runs for a model folder: `<root>/<key>/` holds model.onnx (the
 * graph, with every weight as external data), weights.bin (the weights, float32, page-aligned so ONNX Runtime maps
 * them from the file instead of copying) and manifest.json (written last).
 *
 * Why: sending a model to ONNX Runtime as protobuf bytes with the weights inlined costs a serialisation here, a
 * parse there and two extra copies of every weight at the peak (the JS arrays, the serialised model). Loaded by
 * path from this folder, ORT maps weights.bin; the JS side never holds the weights at all, hit or miss.
 *
 * The key is a sha256 of: model.onnx itself (the graph, the weights' names, shapes and file offsets, every constant
 * inline), each safetensors file's identity (path, device, inode, size, mtime in ns), ORT's version and the cache
 * format. model.onnx is built on every load from shape-only weights (no weight is read), so any change to the
 * graph builders, the fusions, the config or the options changes the key; a rewritten weight file changes its
 * identity. On a hit the stored model.onnx must equal the one just built byte for byte, weights.bin must have the
 * manifest's size, and the first and last 4 KiB of every tensor must hash to the manifest's sample digest; any
 * mismatch (a truncated file, a partial copy, a missing manifest) rebuilds the entry. A same-size change in the
 * middle of a tensor is not detected: verifying every byte would read the whole model on every load.
 *
 * Entries are built in a temporary folder beside the final one and renamed into place (atomic on one filesystem):
 * a killed build leaves a `.tmp` folder, removed by a later build, never a half entry under a key. The root holds
 * at most MAX_ENTRIES entries; the least recently used go first.
 *
 * API:
 *   sessionCacheRoot(opt?)              -> root folder, or undefined when the cache is off (opt false, or
 *                                          LOOM_SESSION_CACHE=off); default $LOOM_SESSION_CACHE, else
 *                                          $XDG_CACHE_HOME/loom/sessions, else ~/.cache/loom/sessions
 *   cachedModel(root, folder, build)    -> { path, status: 'hit' | 'miss' | 'rebuilt', key }
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { type ExternalEntry, type Graph, type HostTensor, toOnnx } from '../engine/index.ts';
import { parameterShapes } from '../models/config.ts';
import type { ModelFolder } from '../models/folder.ts';
import type { WeightSource } from '../models/llama.ts';

/** Bump when the entry layout or what the key covers changes. */
const FORMAT = 1;
const MAX_ENTRIES = 8;
const SAMPLE = 4096;
const WEIGHTS_FILE = 'weights.bin';

export interface CachedModel {
  path: string;
  status: 'hit' | 'miss' | 'rebuilt';
  key: string;
}

interface Manifest {
  format: number;
  key: string;
  weights_bytes: number;
  sample_sha256: string;
  tensors: number;
}

export function sessionCacheRoot(opt?: string | false): string | undefined {
  if (opt === false) return undefined;
  if (opt) return resolve(opt);
  const env = process.env.LOOM_SESSION_CACHE?.trim();
  if (env === 'off' || env === '0' || env === 'false') return undefined;
  if (env) return resolve(env);
  const xdg = process.env.XDG_CACHE_HOME?.trim();
  return join(xdg || join(homedir(), '.cache'), 'loom', 'sessions');
}

let ortVersionMemo: string | undefined;
function ortVersion(): string {
  if (!ortVersionMemo) {
    const req = createRequire(import.meta.url);
    ortVersionMemo = String((req('onnxruntime-node/package.json') as { version?: unknown }).version ?? 'unknown');
  }
  return ortVersionMemo;
}

/**
 * Weights with the folder's names and shapes but no values: views of one shared zeroed buffer that nothing reads
 * (toOnnx in plan mode only looks at byte lengths), so building the graph reads no weight and, for buffers above
 * malloc's mmap threshold, the untouched zero pages never become resident.
 */
function shapeOnlyWeights(folder: ModelFolder): WeightSource {
  const specs = parameterShapes(folder.config);
  const sizes = specs.map((s) => s.shape.reduce((a, b) => a * b, 1));
  const shared = new ArrayBuffer(4 * Math.max(1, ...sizes));
  const byName = new Map<string, HostTensor>();
  specs.forEach((s, i) => {
    byName.set(s.name, { dtype: 'float32', dims: [...s.shape], data: new Float32Array(shared, 0, sizes[i]) });
  });
  return { get: (name) => byName.get(name) };
}

function fileIdentity(files: readonly string[]): string {
  return files
    .map((f) => {
      const st = statSync(f, { bigint: true });
      return `${resolve(f)}:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
    })
    .join('\n');
}

/** sha256 over the first and last SAMPLE bytes of every tensor in the file (catches truncation and partial copies). */
function sampleDigest(path: string, layout: readonly ExternalEntry[]): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(SAMPLE);
    for (const e of layout) {
      const n = Math.min(SAMPLE, e.length);
      for (const at of [e.offset, e.offset + e.length - n]) {
        const got = readSync(fd, buf, 0, n, at);
        h.update(buf.subarray(0, got));
      }
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function readManifest(entry: string): Manifest | undefined {
  try {
    const m = JSON.parse(readFileSync(join(entry, 'manifest.json'), 'utf8')) as Manifest;
    return m && m.format === FORMAT && typeof m.weights_bytes === 'number' ? m : undefined;
  } catch {
    return undefined;
  }
}

function entryValid(entry: string, key: string, model: Uint8Array, layout: readonly ExternalEntry[]): boolean {
  const m = readManifest(entry);
  if (!m || m.key !== key || m.tensors !== layout.length) return false;
  const wPath = join(entry, WEIGHTS_FILE);
  const mPath = join(entry, 'model.onnx');
  if (!existsSync(wPath) || !existsSync(mPath)) return false;
  if (statSync(wPath).size !== m.weights_bytes) return false;
  if (!Buffer.from(readFileSync(mPath)).equals(Buffer.from(model.buffer, model.byteOffset, model.byteLength))) {
    return false;
  }
  return sampleDigest(wPath, layout) === m.sample_sha256;
}

const COPY_CHUNK = 8 << 20;

/**
 * Writes weights.bin tensor by tensor from the safetensors files. F32 tensors are copied through one reused 8 MiB
 * buffer (no JS array per tensor is left for the GC to find later); others are converted one tensor at a time.
 */
function writeWeights(path: string, folder: ModelFolder, layout: readonly ExternalEntry[]): number {
  const fd = openSync(path, 'w');
  const sources = new Map<string, number>();
  const chunk = Buffer.allocUnsafe(COPY_CHUNK);
  let end = 0;
  const put = (bytes: Uint8Array, at: number): void => {
    let pos = 0;
    while (pos < bytes.byteLength) pos += writeSync(fd, bytes, pos, bytes.byteLength - pos, at + pos);
  };
  try {
    for (const e of layout) {
      const info = folder.weights.info(e.name);
      if (info.dtype === 'F32') {
        if (info.byteLength !== e.length) {
          throw new LoomError('INTERNAL', `session cache: ${e.name} has ${info.byteLength} bytes, planned ${e.length}`);
        }
        let src = sources.get(info.file);
        if (src === undefined) {
          src = openSync(info.file, 'r');
          sources.set(info.file, src);
        }
        for (let done = 0; done < e.length; ) {
          const got = readSync(src, chunk, 0, Math.min(COPY_CHUNK, e.length - done), info.start + done);
          if (got <= 0) throw new LoomError('MODEL_INVALID', `${info.file} ends inside ${e.name}`, { file: info.file });
          put(chunk.subarray(0, got), e.offset + done);
          done += got;
        }
      } else {
        const t = folder.weights.readFloat32(e.name);
        if (t.data.byteLength !== e.length) {
          throw new LoomError(
            'INTERNAL',
            `session cache: ${e.name} has ${t.data.byteLength} bytes, planned ${e.length}`,
          );
        }
        put(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), e.offset);
      }
      end = Math.max(end, e.offset + e.length);
    }
    ftruncateSync(fd, end);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
    for (const src of sources.values()) closeSync(src);
  }
  return end;
}

/** Drops the least recently used entries beyond MAX_ENTRIES and build folders left by killed processes. */
function evict(root: string, keep: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  const entries: { path: string; used: number }[] = [];
  for (const n of names) {
    const p = join(root, n);
    try {
      const st = statSync(p);
      if (n.endsWith('.tmp')) {
        if (Date.now() - st.mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
        continue;
      }
      if (p === keep || !st.isDirectory()) continue;
      const m = join(p, 'manifest.json');
      entries.push({ path: p, used: existsSync(m) ? statSync(m).mtimeMs : st.mtimeMs });
    } catch {
      // removed by another process meanwhile
    }
  }
  entries.sort((a, b) => b.used - a.used);
  for (const e of entries.slice(MAX_ENTRIES - 1)) rmSync(e.path, { recursive: true, force: true });
}

/**
 * The cached model.onnx for the graph `build` makes from the folder's weights (building the entry on a miss).
 * `build` must take every weight value from the WeightSource it is given and must not read them.
 */
export function cachedModel(
  root: string,
  folder: ModelFolder,
  build: (weights: WeightSource) => Graph,
  onnx: { fused: boolean },
): CachedModel {
  const layout: ExternalEntry[] = [];
  const model = toOnnx(build(shapeOnlyWeights(folder)), {
    fused: onnx.fused,
    externalData: { dir: '', file: WEIGHTS_FILE, select: 'weights', write: false, layout },
  });
  const key = createHash('sha256')
    .update(`loom-session-cache ${FORMAT}\nort ${ortVersion()}\n`)
    .update(fileIdentity(folder.weights.files))
    .update('\n')
    .update(model)
    .digest('hex')
    .slice(0, 32);
  const entry = join(root, key);
  const path = join(entry, 'model.onnx');
  let status: CachedModel['status'] = 'miss';
  if (existsSync(entry)) {
    if (entryValid(entry, key, model, layout)) {
      const now = new Date();
      try {
        utimesSync(join(entry, 'manifest.json'), now, now); // least-recently-used order for evict
      } catch {
        // read-only cache: still usable
      }
      return { path, status: 'hit', key };
    }
    rmSync(entry, { recursive: true, force: true });
    status = 'rebuilt';
  }
  const tmp = `${entry}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(tmp, { recursive: true });
    const bytes = writeWeights(join(tmp, WEIGHTS_FILE), folder, layout);
    writeFileSync(join(tmp, 'model.onnx'), model);
    const manifest: Manifest = {
      format: FORMAT,
      key,
      weights_bytes: bytes,
      sample_sha256: sampleDigest(join(tmp, WEIGHTS_FILE), layout),
      tensors: layout.length,
    };
    writeJsonAtomic(join(tmp, 'manifest.json'), manifest);
    try {
      renameSync(tmp, entry);
    } catch (e) {
      // Another process built the same entry meanwhile: theirs is as good as ours.
      if (!existsSync(join(entry, 'manifest.json'))) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    try {
      rmSync(tmp, { recursive: true, force: true });
    } catch {
      // nothing was created (e.g. the root is not a folder)
    }
    if (e instanceof LoomError) throw e;
    throw new LoomError('OUTPUT_WRITE', `cannot write the session cache entry ${entry}: ${(e as Error).message}`, {
      file: entry,
      hint: 'free disk space, point LOOM_SESSION_CACHE at a writable folder, or set LOOM_SESSION_CACHE=off',
      cause: e,
    });
  }
  evict(root, entry);
  return { path, status, key };
}
