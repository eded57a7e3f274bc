import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ModelSpec } from '../../config/eval.ts';
import { LoomError } from '../../core/errors.ts';
import type { ChatModel } from '../../core/types.ts';
import { LocalChatModel } from '../../generate/chat-model.ts';
import { loadWeights, openModelFolder } from '../../models/folder.ts';
import { adapterScale, mergeLoraInto, readPeftAdapter, writeMergedModel } from '../../models/peft.ts';
import { OpenAICompatibleModel } from '../../providers/openai-compatible.ts';

/** Builds the ChatModel a suite names: an OpenAI-compatible endpoint, or a local model folder on the engine. */
export async function openModel(spec: ModelSpec, baseDir: string): Promise<ChatModel> {
  if (spec.kind === 'endpoint') {
    return new OpenAICompatibleModel({
      provider: spec.provider,
      baseURL: spec.base_url,
      model: spec.model,
      apiKeyEnv: spec.api_key_env,
      concurrency: spec.concurrency,
      maxRetries: spec.max_retries,
      timeoutMs: spec.timeout_ms,
    });
  }
  const path = resolve(baseDir, spec.path);
  const dir = spec.adapter ? mergedFolderFor(path, resolve(baseDir, spec.adapter)) : path;
  return LocalChatModel.fromFolder(dir, { id: `local:${spec.id}` });
}

/**
 * The pre-suite health probe: the reason an endpoint model cannot be reached, or undefined (local models and
 * reachable endpoints). Bounded: two tries, 5 s each at most (OpenAICompatibleModel.probe).
 */
export async function probeModel(model: ChatModel): Promise<string | undefined> {
  return model instanceof OpenAICompatibleModel ? model.probe() : undefined;
}

/** Hashes a folder's small JSON files by content and its weight files by name, size and modification time. */
function hashFolder(h: ReturnType<typeof createHash>, dir: string): void {
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (f.endsWith('.json')) h.update(`${f}\0`).update(readFileSync(p));
    else if (/\.(safetensors|gguf|onnx|bin)$/.test(f)) {
      const st = statSync(p);
      h.update(`${f}\0${st.size}\0${st.mtimeMs}\0`);
    }
  }
}

/**
 * What the generation cache keys a model by, besides its id: for a local model the folder's config and the
 * identity of its weight files (and adapter), so retraining into the same folder never serves stale replies; for
 * an endpoint its URL and model name, so two servers behind the same model name never share replies.
 */
export function modelFingerprint(spec: ModelSpec, baseDir: string): string {
  const h = createHash('sha256');
  if (spec.kind === 'endpoint') {
    h.update(JSON.stringify([spec.provider ?? null, spec.base_url ?? null, spec.model]));
  } else {
    hashFolder(h, resolve(baseDir, spec.path));
    if (spec.adapter) hashFolder(h, resolve(baseDir, spec.adapter));
  }
  return `${spec.kind}:${spec.id}:${h.digest('hex').slice(0, 16)}`;
}

/**
 * A LoRA adapter is evaluated by merging it into its base once (W + scale·B·A) and caching the merged folder under
 * `.loom/merged/<hash of the base's files and the adapter's config and weights>`; generation then runs at base-model speed.
 */
export function mergedFolderFor(base: string, adapter: string): string {
  const h = createHash('sha256');
  for (const f of [join(adapter, 'adapter_config.json'), join(adapter, 'adapter_model.safetensors')]) {
    if (existsSync(f)) h.update(readFileSync(f));
  }
  // The base's weights count too: retraining a base into the same folder must not reuse an old merge.
  hashFolder(h, base);
  h.update(base);
  const out = resolve('.loom', 'merged', h.digest('hex').slice(0, 16));
  if (existsSync(join(out, 'config.json'))) return out;
  const folder = openModelFolder(base);
  const config = folder.config;
  let loaded: ReturnType<typeof loadWeights>;
  try {
    loaded = loadWeights(folder);
  } finally {
    folder.close();
  }
  const weights = new Map([...loaded].map(([n, t]) => [n, { name: n, dims: t.dims, data: t.data }]));
  const a = readPeftAdapter(adapter, config);
  if (a.type !== 'LORA') {
    throw new LoomError(
      'NOT_IMPLEMENTED',
      `${adapter}: ${a.type} adapters cannot be evaluated yet (only LoRA merges)`,
      {
        field: 'models.adapter',
      },
    );
  }
  mergeLoraInto(weights, a.tensors, adapterScale(a.config));
  const tmp = `${out}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  writeMergedModel(base, tmp, weights);
  mkdirSync(dirname(out), { recursive: true });
  renameSync(tmp, out);
  return out;
}
