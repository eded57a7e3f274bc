/**
 * `loom serve --dry-run`'s memory estimate, also exported at start as loom_model_memory_estimate_bytes: per model,
 * the weights as they load (bytes on disk: fp32 safetensors load as stored; a PEFT adapter is merged into a full
 * copy of the base, so it costs the base's weights again; an ONNX export runs one of its onnx/ files, counted as
 * the largest) plus the KV cache at full use (concurrency sequences x context tokens, fp32, from config.json).
 * Upstreams cost nothing here. GGUF: the file size; its KV cache (llama.cpp's, F16 by default) is not estimated.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ServeConfig } from '../config/serve.ts';
import { LoomError } from '../core/errors.ts';
import { memoryEstimate as modelMemory, readHfConfig } from '../models/config.ts';

export interface ModelMemory {
  name: string;
  weightBytes: number;
  kvBytes: number;
  /** KV cache shape behind kvBytes: sequences x tokens each. */
  sequences: number;
  context: number;
  bytes: number;
}

const WEIGHTS = /\.(safetensors|bin|gguf)$/;

function folderWeightBytes(p: string): number {
  let bytes = 0;
  for (const f of readdirSync(p)) if (WEIGHTS.test(f)) bytes += statSync(join(p, f)).size;
  const onnx = join(p, 'onnx');
  if (existsSync(onnx)) {
    // model.onnx + model.onnx_data count together; several dtypes sit side by side and only one is loaded.
    const sizes = new Map<string, number>();
    for (const f of readdirSync(onnx)) {
      const base = f.replace(/\.onnx(_data)?$/, '');
      if (base !== f) sizes.set(base, (sizes.get(base) ?? 0) + statSync(join(onnx, f)).size);
    }
    bytes += Math.max(0, ...sizes.values());
  }
  return bytes;
}

export function serveMemoryEstimate(config: ServeConfig, baseDir: string): ModelMemory[] {
  return config.models.map((m) => {
    const none = { name: m.name, weightBytes: 0, kvBytes: 0, sequences: 0, context: 0, bytes: 0 };
    if (m.backend === 'upstream') return none;
    const at = (d: string) => {
      const p = resolve(baseDir, d);
      if (!existsSync(p))
        throw new LoomError('INPUT_NOT_FOUND', `model "${m.name}": ${p} does not exist`, { field: 'path' });
      return p;
    };
    const base = at(m.path);
    if (m.backend === 'gguf') return { ...none, weightBytes: statSync(base).size, bytes: statSync(base).size };
    const baseBytes = folderWeightBytes(base);
    let weightBytes = baseBytes;
    for (const a of Object.values(m.adapters)) {
      const p = at(a);
      weightBytes += existsSync(join(p, 'adapter_config.json')) ? baseBytes : folderWeightBytes(p);
    }
    const cfgPath = join(base, 'config.json');
    if (!existsSync(cfgPath)) return { ...none, weightBytes, bytes: weightBytes };
    const cfg = readHfConfig(cfgPath);
    const context = Math.min(cfg.maxPositionEmbeddings, 4096);
    // Every adapter is its own model with its own batch of up to `concurrency` sequences.
    const sequences = m.concurrency * (1 + Object.keys(m.adapters).length);
    const kvBytes = modelMemory(cfg, { contextLength: context, batch: sequences }).kvCacheBytes;
    return { name: m.name, weightBytes, kvBytes, sequences, context, bytes: weightBytes + kvBytes };
  });
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

/** One line per model, as `loom serve --dry-run` prints it. */
export function formatMemoryEstimate(rows: readonly ModelMemory[]): string {
  const lines = rows.map((r) =>
    r.bytes === 0
      ? `${r.name}\tupstream: no local memory`
      : `${r.name}\t${mib(r.weightBytes)} weights + ${mib(r.kvBytes)} KV cache (${r.sequences} seq x ${r.context} tokens) = ${mib(r.bytes)}`,
  );
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  return `${lines.join('\n')}\ntotal\t${mib(total)} (estimate; activations and the runtime itself come on top)\n`;
}
