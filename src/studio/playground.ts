/**
 * Playground and Monitor back ends: chat with a project's model folders (a LoRA adapter is merged into its base
 * once, as `loom serve` does) or with the models of the gateway Studio is mounted on, each turn checked by the
 * guard; and the live numbers of a serve instance, parsed from its Prometheus text.
 */
import { join, resolve } from 'node:path';
import { LoomError } from '../core/errors.ts';
import type { Message } from '../core/types.ts';
import { createGuard, type Guard, type Verdict } from '../guard/index.ts';
import { adapterBaseDir } from '../models/peft.ts';
import type { Gateway } from '../serve/app.ts';
import { openBackend, type ServedModel } from '../serve/backends.ts';
import { Limiter } from '../serve/limiter.ts';
import { type Found, readJson } from './project.ts';

export interface PlaygroundModel {
  id: string;
  label: string;
}

export class Playground {
  private readonly open = new Map<string, Promise<ServedModel>>();
  readonly guard: Guard = createGuard();

  constructor(
    private readonly dir: string,
    private readonly gateway?: Gateway,
  ) {}

  /** `folder:<rel>` for a model folder, `adapter:<rel>` for an adapter, `serve:<name>` for a gateway model. */
  models(found: Found): PlaygroundModel[] {
    const out: PlaygroundModel[] = [];
    for (const m of found.models) out.push({ id: `folder:${m}`, label: m });
    for (const a of found.adapters) out.push({ id: `adapter:${a}`, label: `${a} (LoRA)` });
    for (const [name, m] of this.gateway?.models ?? []) {
      out.push({ id: `serve:${name}`, label: `${name} (serve)` });
      for (const a of m.adapters) out.push({ id: `serve:${name}:${a}`, label: `${name}:${a} (serve)` });
    }
    return out;
  }

  /** Refuses an unknown id before anything is streamed; returns the gateway model for a `serve:` id. */
  private check(id: string, found: Found): { model: ServedModel; adapter?: string } | undefined {
    if (id.startsWith('serve:')) {
      const [name, adapter] = id.slice(6).split(':');
      const m = this.gateway?.models.get(name ?? '');
      if (!m || (adapter !== undefined && !m.adapters.includes(adapter)))
        throw new LoomError('INPUT_NOT_FOUND', `model ${id.slice(0, 200)} is not served here`, { field: 'model' });
      return { model: m, adapter };
    }
    // Only ids the scan listed are opened: the browser cannot name an arbitrary folder.
    if (!this.models(found).some((m) => m.id === id))
      throw new LoomError('INPUT_NOT_FOUND', `model ${id.slice(0, 200)} is not in this project`, {
        field: 'model',
        hint: 'pick one of GET /api/playground/models',
      });
    return undefined;
  }

  private async backend(id: string, found: Found): Promise<{ model: ServedModel; adapter?: string }> {
    const served = this.check(id, found);
    if (served) return served;
    let p = this.open.get(id);
    if (!p) {
      const rel = id.slice(id.indexOf(':') + 1);
      const abs = resolve(this.dir, rel);
      const isAdapter = id.startsWith('adapter:');
      // base_model_name_or_path is relative to the adapter folder or a Hub id (models/peft.ts adapterBaseDir)
      const base = isAdapter
        ? (adapterBaseDir(abs) ??
          String(readJson<Record<string, unknown>>(join(abs, 'adapter_config.json')).base_model_name_or_path ?? ''))
        : abs;
      p = openBackend(
        {
          name: 'studio',
          backend: 'local',
          path: resolve(abs, base),
          adapters: isAdapter ? { a: abs } : {},
          concurrency: 1,
        },
        this.dir,
        new Limiter(1, 4, () => {}),
      );
      p.catch(() => this.open.delete(id));
      this.open.set(id, p);
    }
    return { model: await p, adapter: id.startsWith('adapter:') ? 'a' : undefined };
  }

  /**
   * One chat turn: the input verdict first (a block is answered by the guard's refusal, the model never sees it),
   * then text deltas, then the output verdict.
   */
  async chat(
    found: Found,
    id: string,
    messages: Message[],
    maxTokens: number,
    signal: AbortSignal,
    send: (
      event:
        | { type: 'input' | 'output'; verdict: Verdict }
        | { type: 'delta'; text: string }
        | { type: 'done'; finish: string },
    ) => void,
  ): Promise<void> {
    this.check(id, found);
    const input = this.guard.checkInput(messages);
    send({ type: 'input', verdict: input });
    if (input.action === 'block') {
      send({ type: 'delta', text: input.refusal ?? '' });
      send({ type: 'done', finish: 'guard' });
      return;
    }
    const { model, adapter } = await this.backend(id, found);
    const r = await model.generate({
      messages,
      adapter,
      settings: { maxNewTokens: maxTokens, temperature: 0 },
      signal,
      onText: (text) => send({ type: 'delta', text }),
    });
    send({ type: 'output', verdict: this.guard.checkOutput(r.text) });
    send({ type: 'done', finish: r.finishReason });
  }

  async close(): Promise<void> {
    for (const p of this.open.values()) await (await p.catch(() => undefined))?.close();
  }
}

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format → samples (comments and histogram buckets skipped: the page shows sums and counts). */
function parsePrometheus(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1]!.endsWith('_bucket')) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = Number(m[4]);
    if (Number.isFinite(value)) out.push({ name: m[1]!, labels, value });
  }
  return out;
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** The mounted gateway's metrics, or a loopback serve URL's: Studio never sends a request off the machine. */
export async function monitorSamples(gateway: Gateway | undefined, url: string | undefined): Promise<MetricSample[]> {
  if (!url) {
    if (!gateway)
      throw new LoomError('INPUT_NOT_FOUND', 'no serve instance to read', {
        field: 'url',
        hint: 'start Studio with `loom serve --studio`, or give the URL of a `loom serve` on this machine',
      });
    return parsePrometheus(await gateway.metrics.text());
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LoomError('CONFIG_INVALID', `"${url.slice(0, 200)}" is not a URL`, { field: 'url' });
  }
  if (!LOOPBACK.has(u.hostname) || !/^https?:$/.test(u.protocol))
    throw new LoomError('CONFIG_INVALID', `${u.hostname} is not this machine`, {
      field: 'url',
      hint: 'only 127.0.0.1, ::1 or localhost: Studio sends no request off the machine',
    });
  const r = await fetch(new URL('/metrics', u), { signal: AbortSignal.timeout(5000) }).catch((e: Error) => {
    throw new LoomError('NETWORK', `cannot reach ${u.origin}: ${e.message}`, {
      field: 'url',
      hint: 'is `loom serve` running there?',
    });
  });
  if (!r.ok) throw new LoomError('NETWORK', `${u.origin}/metrics answered ${r.status}`, { field: 'url' });
  return parsePrometheus(await r.text());
}
