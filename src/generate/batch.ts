/**
 * DecodeBatch: the batched decode state continuous batching runs on. Sequences of different lengths share one
 * KV cache [B, kvHeads, S, headDim] per layer, resident in the runtime's thread; each row's tokens sit at the right
 * end of its S positions (left padding), so one decoder run serves every row with its own attention mask and
 * position ids (the decoder graph of causal-lm.ts, which is batch- and GQA-generic). Rows join and leave between
 * steps: a newcomer is prefilled on its own (a batch of newcomers in one left-padded run), and its cache rows are
 * copied into the batch inside the runtime's thread (CausalLM.composeCaches): no cache crosses to JS, per step or
 * per join. Leaving rows are dropped at the next step, when the leading positions every remaining row pads are
 * trimmed too, so the cache stays sized to the longest live sequence.
 *
 * API:
 *   const b = new DecodeBatch(lm, { padId })
 *   await b.join(prompts, { logits })        -> { ids, next, logits? }   new row ids; first greedy token of each
 *   await b.step(tokenOf, { logits })        -> { ids, next, logits? }   one decode step for every live row;
 *                                               tokenOf(id) is the row's last token; logits [rows, V] in `ids` order
 *   b.leave(id)                              drops a row (takes effect at the next step or join)
 *   b.length(id) / b.size / b.width
 *   await b.release()
 */
import { LoomError } from '../core/errors.ts';
import type { CausalLM, KvCache } from './causal-lm.ts';

export interface BatchOutput {
  /** Row ids, in the order of next and of the logits rows. */
  ids: number[];
  /** Greedy (first maximum) next token of each row. */
  next: number[];
  /** [ids.length, vocab] when asked for. */
  logits?: Float32Array;
}

interface Pending {
  cache: KvCache;
  rows: { id: number; len: number; src: number }[];
}

export class DecodeBatch {
  /** Live rows in cache row order; len = tokens in the cache (prompt + fed generated tokens). */
  private rows: { id: number; len: number }[] = [];
  private cache?: KvCache;
  private pending: Pending[] = [];
  private readonly dropped = new Set<number>();
  private nextId = 1;

  constructor(
    private readonly lm: CausalLM,
    private readonly opts: { padId: number },
  ) {}

  /** Live rows (joined, not left). */
  get size(): number {
    const all = this.rows.length + this.pending.reduce((n, p) => n + p.rows.length, 0);
    return all - this.dropped.size;
  }

  /** Positions of the batched cache (the longest live row's length after the last step). */
  get width(): number {
    return this.cache?.pastLength ?? 0;
  }

  length(id: number): number | undefined {
    if (this.dropped.has(id)) return undefined;
    return (this.rows.find((r) => r.id === id) ?? this.pending.flatMap((p) => p.rows).find((r) => r.id === id))?.len;
  }

  /** Prefill prompts in one left-padded run; each becomes a row that the next step decodes with the rest. */
  async join(prompts: readonly (readonly number[])[], opts: { logits?: boolean } = {}): Promise<BatchOutput> {
    if (prompts.length === 0) return { ids: [], next: [] };
    if (prompts.some((p) => p.length === 0)) throw new LoomError('INPUT_MALFORMED', 'join: empty prompt');
    const L = Math.max(...prompts.map((p) => p.length));
    const pad = (p: readonly number[]) => L - p.length;
    const ids = prompts.map((p) => [...new Array<number>(pad(p)).fill(this.opts.padId), ...p]);
    const mask = prompts.map((p) => [...new Array<number>(pad(p)).fill(0), ...new Array<number>(p.length).fill(1)]);
    const r = await this.lm.decode(ids, mask, this.lm.emptyCache(prompts.length), opts);
    const rows = prompts.map((p, src) => ({ id: this.nextId++, len: p.length, src }));
    this.pending.push({ cache: r.cache, rows });
    return { ids: rows.map((x) => x.id), next: r.next, logits: r.logits };
  }

  leave(id: number): void {
    if (this.length(id) !== undefined) this.dropped.add(id);
  }

  /** One decode step: every live row takes its next token (tokenOf(id)) and returns the one after. */
  async step(tokenOf: (id: number) => number, opts: { logits?: boolean } = {}): Promise<BatchOutput> {
    await this.settle();
    const cache = this.cache;
    if (!cache || this.rows.length === 0) return { ids: [], next: [] };
    const S = cache.pastLength;
    const ids = this.rows.map((r) => [tokenOf(r.id)]);
    const mask = this.rows.map((r) => [
      ...new Array<number>(S - r.len).fill(0),
      ...new Array<number>(r.len + 1).fill(1),
    ]);
    this.cache = undefined; // consumed by decode, even if it fails
    const out = await this.lm.decode(ids, mask, cache, opts);
    this.cache = out.cache;
    for (const r of this.rows) r.len++;
    return { ids: this.rows.map((r) => r.id), next: out.next, logits: out.logits };
  }

  /** Apply joins and leaves: one copy of the surviving and new rows into a cache as wide as the longest. */
  private async settle(): Promise<void> {
    if (this.pending.length === 0 && this.dropped.size === 0) return;
    const keep = this.rows.map((r, i) => ({ ...r, part: 0, src: i })).filter((r) => !this.dropped.has(r.id));
    const parts: KvCache[] = this.cache ? [this.cache] : [];
    const base = parts.length;
    const joined = this.pending.flatMap((p, k) =>
      p.rows.filter((r) => !this.dropped.has(r.id)).map((r) => ({ ...r, part: base + k })),
    );
    parts.push(...this.pending.map((p) => p.cache));
    const all = [...keep, ...joined];
    this.pending = [];
    this.dropped.clear();
    this.cache = undefined;
    this.rows = all.map((r) => ({ id: r.id, len: r.len }));
    if (all.length === 0) {
      for (const c of parts) await this.lm.releaseCache(c);
      return;
    }
    const width = Math.max(...all.map((r) => r.len));
    const only = parts.length === 1 ? parts[0]! : undefined;
    if (only && only.pastLength === width && all.every((r, i) => r.src === i) && all.length === rowsOf(only)) {
      this.cache = only; // e.g. one newcomer into an empty batch: already laid out, no copy
      return;
    }
    this.cache = await this.lm.composeCaches(
      parts,
      all.map((r) => [r.part, r.src] as const),
      width,
    );
  }

  /** Free the resident cache (and any prefilled rows not yet merged). */
  async release(): Promise<void> {
    const caches = [...(this.cache ? [this.cache] : []), ...this.pending.map((p) => p.cache)];
    this.cache = undefined;
    this.pending = [];
    this.rows = [];
    this.dropped.clear();
    for (const c of caches) await this.lm.releaseCache(c);
  }
}

function rowsOf(c: KvCache): number {
  const first = Object.values(c.resident ?? {})[0];
  return first?.dims[0] ?? 0;
}
