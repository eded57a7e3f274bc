import type { DataRow, RejectRecord } from '../../core/types.ts';
import { rowKind } from '../formats/index.ts';
import { detectLanguage } from '../langid.ts';
import type { TokenCounter } from '../lint.ts';
import { rowText } from '../step.ts';

/**
 * The data report: what happened to every row (counts in/out per step with reasons) and what came out
 * (length and token-length histograms, language mix, labels, PII counts, duplicate clusters with examples).
 * Collected in one streaming pass with bounded memory (quantiles from a fixed-size reservoir).
 */
export interface Histogram {
  /** Bucket i holds values in [edges[i], edges[i+1]); the last bucket is open-ended. */
  edges: number[];
  counts: number[];
  n: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface StepReport {
  step: string;
  in: number;
  out: number;
  dropped: Record<string, number>;
  changed: Record<string, number>;
}

export interface DuplicateExample {
  kept_id: string;
  kept_text?: string;
  step: string;
  duplicates: { id?: string; source: string; text: string; reason: string }[];
}

export interface DatasetStats {
  rows: number;
  kinds: Record<string, number>;
  chars: Histogram;
  tokens?: Histogram;
  turns?: Histogram;
  languages: Record<string, number>;
  labels: Record<string, number>;
}

export interface DataReport {
  version: 1;
  title: string;
  created: string;
  inputs: string[];
  tokenizer?: string;
  totals: { input_rows: number; output_rows: number; dropped: number; changed: number; malformed: number };
  steps: StepReport[];
  splits: Record<string, number>;
  /** Rows per label in each split (classification data), to check the split kept label shares. */
  split_labels?: Record<string, Record<string, number>>;
  output: DatasetStats;
  pii: Record<string, number>;
  counters: Record<string, number>;
  duplicates: { removed: number; clusters: number; examples: DuplicateExample[] };
  /**
   * Near-dedup index memory: the up-front estimate (printed before the run starts) and, after the run, the
   * bytes the index really held (`near_dedup.index_bytes`).
   */
  near_dedup_memory?: {
    step: string;
    estimated_rows: number;
    estimated_bytes: number;
    estimate: string;
    actual_bytes?: number;
  };
  outputs: Record<string, string>;
  duration_s?: number;
}

export const LENGTH_EDGES = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

class HistogramBuilder {
  private counts: number[];
  private n = 0;
  private sum = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = 0;
  private sample: number[] = [];
  private seen = 0;
  private rng = 0x9e3779b9;

  constructor(
    private readonly edges: number[] = LENGTH_EDGES,
    private readonly cap = 50_000,
  ) {
    this.counts = edges.map(() => 0);
  }

  add(v: number): void {
    let b = this.edges.length - 1;
    for (let i = 1; i < this.edges.length; i++) {
      if (v < this.edges[i]!) {
        b = i - 1;
        break;
      }
    }
    this.counts[b]!++;
    this.n++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    // Reservoir sample (deterministic xorshift) keeps quantiles cheap on any corpus size.
    this.seen++;
    if (this.sample.length < this.cap) this.sample.push(v);
    else {
      this.rng ^= this.rng << 13;
      this.rng ^= this.rng >>> 17;
      this.rng ^= this.rng << 5;
      const j = (this.rng >>> 0) % this.seen;
      if (j < this.cap) this.sample[j] = v;
    }
  }

  build(): Histogram {
    const s = [...this.sample].sort((a, b) => a - b);
    const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : 0);
    return {
      edges: this.edges,
      counts: this.counts,
      n: this.n,
      min: this.n ? this.min : 0,
      max: this.max,
      mean: this.n ? Number((this.sum / this.n).toFixed(2)) : 0,
      p50: q(0.5),
      p90: q(0.9),
      p99: q(0.99),
    };
  }
}

export type LanguageOf = (text: string) => string;

/** Streaming statistics of one dataset (the output of a run, or any file given to `loom data stats`). */
export class DatasetStatsBuilder {
  private rows = 0;
  private kinds: Record<string, number> = {};
  private chars = new HistogramBuilder();
  private tokens = new HistogramBuilder();
  private turns = new HistogramBuilder([0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64]);
  private hasTurns = false;
  private languages: Record<string, number> = {};
  private labels: Record<string, number> = {};

  constructor(
    private readonly countTokens?: TokenCounter,
    private readonly languageOf: LanguageOf = (t) => detectLanguage(t).lang,
  ) {}

  async add(row: DataRow): Promise<void> {
    this.rows++;
    const kind = rowKind(row);
    this.kinds[kind] = (this.kinds[kind] ?? 0) + 1;
    const text = rowText(row);
    this.chars.add([...text].length);
    if (this.countTokens) this.tokens.add(await this.countTokens(text));
    if (row.messages) {
      this.hasTurns = true;
      this.turns.add(row.messages.filter((m) => m.role !== 'system').length);
    }
    const lang = typeof row.meta.lang === 'string' ? row.meta.lang : this.languageOf(text);
    this.languages[lang] = (this.languages[lang] ?? 0) + 1;
    if (row.label !== undefined) this.labels[row.label] = (this.labels[row.label] ?? 0) + 1;
  }

  build(): DatasetStats {
    const s: DatasetStats = {
      rows: this.rows,
      kinds: this.kinds,
      chars: this.chars.build(),
      languages: sortDesc(this.languages),
      labels: sortDesc(this.labels),
    };
    if (this.countTokens) s.tokens = this.tokens.build();
    if (this.hasTurns) s.turns = this.turns.build();
    return s;
  }
}

function sortDesc(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
}

const EXAMPLE_CLUSTERS = 20;
const EXAMPLES_PER_CLUSTER = 3;
const PREVIEW = 160;

function preview(text: string): string {
  const t = text
    .slice(0, PREVIEW * 4)
    .replace(/\s+/g, ' ')
    .trim();
  return t.length > PREVIEW ? `${t.slice(0, PREVIEW - 1)}…` : t;
}

/**
 * Collects step counts, reject reasons, PII counters and duplicate clusters while a run streams. `keepPreview`
 * remembers short texts of kept rows so duplicate examples can show what they duplicate (bounded).
 */
export class RunReportBuilder {
  private steps = new Map<string, StepReport>();
  private order: string[] = [];
  private counters: Record<string, number> = {};
  private dupClusters = new Map<string, DuplicateExample>();
  private dupRemoved = 0;
  private previews = new Map<string, string>();
  private malformed = 0;
  private inputRows = 0;
  private lsh?: { step: string; rows: number; bytes: number; text: string };

  /** Records the up-front near-dedup memory estimate (src/data/dedup/lsh.ts `estimateLshMemory`). */
  setLshEstimate(e: { rows: number; bytes: number; text: string }, step: string): void {
    this.lsh = { step, rows: e.rows, bytes: e.bytes, text: e.text };
  }

  /** Declares the steps in order (so steps that saw no rows still appear). */
  declare(step: string): void {
    if (!this.steps.has(step)) {
      this.steps.set(step, { step, in: 0, out: 0, dropped: {}, changed: {} });
      this.order.push(step);
    }
  }

  rowIn(step: string): void {
    this.declare(step);
    this.steps.get(step)!.in++;
  }

  rowOut(step: string, row?: DataRow): void {
    this.declare(step);
    this.steps.get(step)!.out++;
    // The latest version of a row (normalised, masked) is what a duplicate example should show.
    if (row && (this.previews.size < 200_000 || this.previews.has(row.id))) {
      this.previews.set(row.id, preview(rowText(row)));
    }
  }

  inputRow(): void {
    this.inputRows++;
  }

  reject(r: RejectRecord): void {
    this.declare(r.step);
    const s = this.steps.get(r.step)!;
    const bucket = r.action === 'dropped' ? s.dropped : s.changed;
    bucket[r.reason] = (bucket[r.reason] ?? 0) + 1;
    if (r.step === 'ingest' && r.action === 'dropped') this.malformed++;
    if (r.duplicate_of !== undefined && r.action === 'dropped') {
      this.dupRemoved++;
      let c = this.dupClusters.get(r.duplicate_of);
      if (!c && this.dupClusters.size < 100_000) {
        c = { kept_id: r.duplicate_of, step: r.step, duplicates: [] };
        this.dupClusters.set(r.duplicate_of, c);
      }
      if (c && c.duplicates.length < EXAMPLES_PER_CLUSTER) {
        c.duplicates.push({
          id: isRow(r.row) ? r.row.id : undefined,
          source: `${r.source.file}:${r.source.line}`,
          text: preview(isRow(r.row) ? rowText(r.row) : typeof r.row === 'string' ? r.row : JSON.stringify(r.row)),
          reason: r.reason,
        });
      }
    }
  }

  count(key: string, n = 1): void {
    this.counters[key] = (this.counters[key] ?? 0) + n;
  }

  build(base: {
    title: string;
    inputs: string[];
    output: DatasetStats;
    splits: Record<string, number>;
    split_labels?: Record<string, Record<string, number>>;
    outputs: Record<string, string>;
    tokenizer?: string;
    duration_s?: number;
  }): DataReport {
    const steps = this.order.map((k) => this.steps.get(k)!);
    // The source step reads records (malformed ones included) and lets the readable ones out.
    const ingest = this.steps.get('ingest');
    if (ingest && this.inputRows > ingest.in) ingest.in = this.inputRows;
    let dropped = 0;
    let changed = 0;
    for (const s of steps) {
      for (const v of Object.values(s.dropped)) dropped += v;
      for (const v of Object.values(s.changed)) changed += v;
    }
    const pii: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.counters)) {
      // `pii.rows` counts rows with any PII; the chart shows the types.
      if (k.startsWith('pii.') && k !== 'pii.rows') pii[k.slice(4)] = v;
    }
    const clusters = [...this.dupClusters.values()];
    // Largest clusters make the best examples.
    const examples = clusters
      .sort((a, b) => b.duplicates.length - a.duplicates.length)
      .slice(0, EXAMPLE_CLUSTERS)
      .map((c) => ({ ...c, kept_text: this.previews.get(c.kept_id) }));
    return {
      version: 1,
      title: base.title,
      created: new Date().toISOString(),
      inputs: base.inputs,
      tokenizer: base.tokenizer,
      totals: {
        input_rows: this.inputRows,
        output_rows: base.output.rows,
        dropped,
        changed,
        malformed: this.malformed,
      },
      steps,
      splits: base.splits,
      split_labels: base.split_labels,
      output: base.output,
      pii,
      counters: this.counters,
      duplicates: { removed: this.dupRemoved, clusters: this.dupClusters.size, examples },
      near_dedup_memory: this.lsh
        ? {
            step: this.lsh.step,
            estimated_rows: this.lsh.rows,
            estimated_bytes: this.lsh.bytes,
            estimate: this.lsh.text,
            actual_bytes: this.lsh.step === 'near_dedup' ? this.counters['near_dedup.index_bytes'] : undefined,
          }
        : undefined,
      outputs: base.outputs,
      duration_s: base.duration_s,
    };
  }
}

function isRow(v: unknown): v is DataRow {
  return typeof v === 'object' && v !== null && 'source' in v && 'meta' in v;
}
