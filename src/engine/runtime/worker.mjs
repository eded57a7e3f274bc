// ORT session host. Plain .mjs so a worker thread can load it without the tsx loader.
// As a worker (workerData.loomEngine) it serves messages; imported directly it is the in-thread backend.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
let ortModule;
function ort() {
  ortModule ??= require('onnxruntime-node');
  return ortModule;
}

const sessions = new Map();
const profilePrefixes = new Map();
let nextId = 1;
// ORT output values kept in this thread between runs (e.g. a KV cache), so they never cross to the caller.
const residents = new Map();
let nextResident = 1;

/** Directory holding onnxruntime-node's native libraries for this platform. */
export function ortBinDir() {
  const main = require.resolve('onnxruntime-node');
  return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

export function cudaAvailable() {
  return existsSync(join(ortBinDir(), 'libonnxruntime_providers_cuda.so'));
}

function sessionOptions(opts) {
  const device = opts.device ?? 'cpu';
  return {
    executionProviders: device === 'cuda' ? [{ name: 'cuda', deviceId: opts.deviceId ?? 0 }] : ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: opts.optimization ?? 'all',
    enableCpuMemArena: opts.memArena ?? true,
    enableMemPattern: opts.memPattern ?? true,
    logSeverityLevel: opts.logLevel ?? 3,
    ...(opts.optimizedModelFilePath ? { optimizedModelFilePath: opts.optimizedModelFilePath } : {}),
    ...(opts.profilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profilePrefix } : {}),
    extra: {
      session: {
        intra_op: {
          allow_spinning: opts.spinning ? '1' : '0',
          // how long an idle thread spins before it sleeps: long enough to bridge the gap between two ops of a run,
          // short enough that a thread does not hold its core when the machine is busy
          ...(opts.spinning && opts.spinDurationUs !== undefined
            ? { spin_duration_us: String(opts.spinDurationUs) }
            : {}),
        },
        ...(opts.prepack === false ? { disable_prepacking: '1' } : {}),
      },
    },
  };
}

export async function load(model, opts) {
  const session = await ort().InferenceSession.create(model, sessionOptions(opts));
  const id = nextId++;
  sessions.set(id, session);
  if (opts.profilePrefix) profilePrefixes.set(id, opts.profilePrefix);
  return { id, inputNames: [...session.inputNames], outputNames: [...session.outputNames] };
}

function toOrt(h) {
  return new (ort().Tensor)(h.dtype === 'float64' ? 'float64' : h.dtype, h.data, h.dims);
}

function fromOrt(t) {
  const dtype = t.type === 'float64' ? 'float64' : t.type;
  return { dtype, dims: [...t.dims], data: t.data };
}

/**
 * feeds: host tensors, or { resident } handles of values kept by an earlier run (consumed: freed after this run).
 * keep: output names to keep here; they come back as { resident, dtype, dims } instead of their data.
 */
export async function run(id, feeds, fetches, keep) {
  const session = sessions.get(id);
  if (!session) throw new Error(`session ${id} was released`);
  const ortFeeds = {};
  const consumed = [];
  for (const [k, v] of Object.entries(feeds)) {
    if (v.resident !== undefined) {
      const t = residents.get(v.resident);
      if (!t) throw new Error(`feed ${k}: resident value ${v.resident} was freed or never existed`);
      ortFeeds[k] = t;
      consumed.push(v.resident);
    } else ortFeeds[k] = toOrt(v);
  }
  let res;
  try {
    res = fetches ? await session.run(ortFeeds, fetches) : await session.run(ortFeeds);
  } finally {
    free(consumed); // consumed even when the run fails: the caller has already let go of its handles
  }
  const kept = new Set(keep ?? []);
  const out = {};
  for (const [k, v] of Object.entries(res)) {
    if (kept.has(k)) {
      const rid = nextResident++;
      residents.set(rid, v);
      out[k] = { resident: rid, dtype: v.type === 'float64' ? 'float64' : v.type, dims: [...v.dims] };
      continue;
    }
    out[k] = fromOrt(v);
    v.dispose?.();
  }
  return out;
}

/**
 * New resident values assembled from rows of resident [B, H, S, D] values, for a KV-cache batch that sequences
 * join and leave between decode steps: for each job (one list of source handles per cache tensor) output row i is
 * row picks[i][1] of source picks[i][0], right-aligned along axis 2 to `length` (the last min(length, S) positions
 * are copied, earlier ones are zero: left padding that the attention mask hides). Sources are consumed (freed).
 * The copy happens here, in the runtime's thread: the cache never crosses to the caller.
 */
export function compose(jobs, picks, length) {
  const out = [];
  const used = new Set();
  for (const sources of jobs) {
    const ts = sources.map((h) => {
      const t = residents.get(h);
      if (!t) throw new Error(`compose: resident value ${h} was freed or never existed`);
      if (t.dims.length !== 4) throw new Error(`compose: resident value ${h} is not [B, H, S, D]`);
      return t;
    });
    const [, H, , D] = ts[0].dims;
    if (ts.some((t) => t.dims[1] !== H || t.dims[3] !== D || t.type !== ts[0].type)) {
      throw new Error('compose: sources differ in heads, head dim or dtype');
    }
    const data = new ts[0].data.constructor(picks.length * H * length * D);
    picks.forEach(([s, r], i) => {
      const t = ts[s];
      if (!t || r < 0 || r >= t.dims[0]) throw new Error(`compose: no row ${r} in source ${s}`);
      const S = t.dims[2];
      const n = Math.min(S, length);
      for (let h = 0; h < H; h++) {
        const from = ((r * H + h) * S + (S - n)) * D;
        data.set(t.data.subarray(from, from + n * D), ((i * H + h) * length + (length - n)) * D);
      }
    });
    const dims = [picks.length, H, length, D];
    const rid = nextResident++;
    residents.set(rid, new (ort().Tensor)(ts[0].type, data, dims));
    out.push({ resident: rid, dtype: ts[0].type, dims });
    for (const h of sources) used.add(h);
  }
  free([...used]);
  return out;
}

/** Drop resident values (unknown handles are ignored: freeing twice is harmless). */
export function free(handles) {
  for (const h of handles) {
    residents.get(h)?.dispose?.();
    residents.delete(h);
  }
}

/** How many values are resident (tests check that generation frees its cache). */
export function residentCount() {
  return residents.size;
}

/** Stop ORT's profiler for a session; returns the JSON trace file it wrote. */
export async function endProfiling(id) {
  const session = sessions.get(id);
  if (!session) throw new Error(`session ${id} was released`);
  await session.endProfiling();
  // The Node binding does not return the trace path: pick the newest file with the session's prefix.
  const prefix = profilePrefixes.get(id);
  if (!prefix) throw new Error('session was not loaded with profilePrefix');
  const dir = dirname(prefix);
  const base = basename(prefix);
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(base) && f.endsWith('.json'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!files.length) throw new Error(`no profile written under ${prefix}`);
  return files[0];
}

export async function release(id) {
  const s = sessions.get(id);
  sessions.delete(id);
  profilePrefixes.delete(id);
  if (s) await s.release();
}

export async function releaseAll() {
  for (const id of [...sessions.keys()]) await release(id);
  free([...residents.keys()]);
}

function transferList(outputs) {
  const bufs = new Set();
  for (const t of Object.values(outputs)) {
    const b = t.data?.buffer;
    if (t.data && b instanceof ArrayBuffer && b.byteLength === t.data.byteLength) bufs.add(b);
  }
  return [...bufs];
}

if (!isMainThread && workerData?.loomEngine && parentPort) {
  const port = parentPort;
  port.on('message', async (msg) => {
    try {
      let result;
      let transfer = [];
      if (msg.type === 'load') result = await load(msg.model, msg.opts);
      else if (msg.type === 'run') {
        result = await run(msg.session, msg.feeds, msg.fetches, msg.keep);
        transfer = transferList(result);
      } else if (msg.type === 'release') result = await release(msg.session);
      else if (msg.type === 'free') result = free(msg.handles);
      else if (msg.type === 'compose') result = compose(msg.jobs, msg.picks, msg.length);
      else if (msg.type === 'residentCount') result = residentCount();
      else if (msg.type === 'endProfiling') result = await endProfiling(msg.session);
      else if (msg.type === 'close') result = await releaseAll();
      else throw new Error(`unknown message ${msg.type}`);
      port.postMessage({ id: msg.id, ok: true, result }, transfer);
    } catch (e) {
      port.postMessage({ id: msg.id, ok: false, error: { message: String(e?.message ?? e), stack: e?.stack } });
    }
  });
}
