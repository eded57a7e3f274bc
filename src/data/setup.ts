/**
 * The set-up every data run shares — the single run (pipeline.ts), a shard (shard-run.ts) and the merge of shards
 * (merge.ts): the config resolved once, the rejects sink and step context, the input rows, the configured steps,
 * the run bookkeeping (config hash, DONE marker, cleanup) and `openRun`, which opens all of it for one output folder.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { type DataConfig, type DataConfigInput, type DataInputConfig, dataConfig } from '../config/data.ts';
import type { IngestConfig } from '../config/data-clean.ts';
import { loadConfig, validateConfig } from '../config/load.ts';
import { AtomicWriter } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { Progress } from '../core/progress.ts';
import type { DataRow, RejectRecord } from '../core/types.ts';
import { loomVersion } from '../core/version.ts';
import { boilerplateStep } from './dedup/boilerplate.ts';
import { exactDedupStep } from './dedup/exact.ts';
import { estimateLshMemory } from './dedup/lsh.ts';
import { nearDedupStep } from './dedup/near.ts';
import { qualityFilterStep } from './filters/index.ts';
import { formatStep } from './format-step.ts';
import { type InputFormatName, importDataRow, recordOf } from './formats/index.ts';
import { readRegistryDatasets } from './formats/llamafactory.ts';
import { expandInputs, ingestOptions, isMalformed, malformedToReject, readInputs, shownPath } from './ingest/index.ts';
import { loadTokenCounter, type TokenCounter } from './lint.ts';
import { normalizeStep } from './normalize.ts';
import { piiStep, rejectMasker } from './pii.ts';
import { REJECT_MAX_BYTES, rejectLine } from './reject-cap.ts';
import { type DataReport, RunReportBuilder } from './report/index.ts';
import { type ShardSpec, selectShardFiles } from './shard.ts';
import type { Step, StepContext } from './step.ts';
export interface RunDataOptions {
  /** Folder that relative paths in the config resolve against (default: the config file's folder, else cwd). */
  baseDir?: string;
  overrides?: string[];
  strict?: boolean;
  force?: boolean;
  shard?: ShardSpec;
  /** Overrides `out_dir`. */
  outDir?: string;
  /** No progress output. */
  quiet?: boolean;
  progressStream?: NodeJS.WriteStream;
}

export interface RunDataResult {
  status: 'done' | 'up-to-date' | 'shard-done';
  outDir: string;
  counts: {
    input: number;
    output: number;
    dropped: number;
    changed: number;
    malformed: number;
    splits: Record<string, number>;
  };
  outputs: Record<string, string>;
  report?: DataReport;
}

export interface Resolved {
  cfg: DataConfig;
  baseDir: string;
  outDir: string;
  configPath?: string;
  name: string;
}

export function resolveConfig(config: string | DataConfigInput, opts: RunDataOptions): Resolved {
  let cfg: DataConfig;
  let baseDir: string;
  let configPath: string | undefined;
  if (typeof config === 'string') {
    const loaded = loadConfig(config, dataConfig, opts.overrides ?? []);
    cfg = loaded.config;
    baseDir = opts.baseDir ?? loaded.baseDir;
    configPath = loaded.path;
  } else {
    cfg = validateConfig(dataConfig, config, '<data config>');
    baseDir = resolve(opts.baseDir ?? process.cwd());
  }
  const outDir = resolve(baseDir, opts.outDir ?? cfg.out_dir);
  const name = cfg.name ?? (configPath ? basename(configPath, extname(configPath)) : 'data');
  return { cfg, baseDir, outDir, configPath, name };
}

// ---------------------------------------------------------------------------------------------------------------
// Rejects and the step context

/** Buffers rejects (steps report them synchronously) and writes them out between rows. */
export class RejectSink {
  private pending: string[] = [];
  count = 0;
  constructor(
    private readonly writer: AtomicWriter,
    private readonly report: RunReportBuilder,
    /** Applied to every record first (PII masking of rejects, see `rejectMasker`). */
    private readonly transform?: (r: RejectRecord) => RejectRecord,
    /** Records over this many bytes keep size + sha256 + head of their row instead of the row (reject-cap.ts). */
    private readonly maxBytes = REJECT_MAX_BYTES,
  ) {}

  push(r: RejectRecord): void {
    this.count++;
    const { line, record } = rejectLine(this.transform ? this.transform(r) : r, this.maxBytes);
    this.report.reject(record);
    this.pending.push(line);
  }

  async flush(): Promise<void> {
    while (this.pending.length) await this.writer.write(`${this.pending.shift()}\n`);
  }
}

/** A run's report, rejects file and the step context that feeds them. */
export function rejectContext(
  rejectsPath: string,
  tmpDir: string,
  strict: boolean,
  mask?: (r: RejectRecord) => RejectRecord,
): { report: RunReportBuilder; rejectsWriter: AtomicWriter; sink: RejectSink; ctx: StepContext } {
  const report = new RunReportBuilder();
  const rejectsWriter = new AtomicWriter(rejectsPath);
  const sink = new RejectSink(rejectsWriter, report, mask);
  const ctx: StepContext = { reject: (x) => sink.push(x), count: (k, n) => report.count(k, n), tmpDir, strict };
  return { report, rejectsWriter, sink, ctx };
}

/** Wraps one step so the report counts its rows in and out and rejects are flushed in order. */
export function meteredStep(
  step: Step,
  rows: AsyncIterable<DataRow>,
  ctx: StepContext,
  report: RunReportBuilder,
  sink: RejectSink,
) {
  report.declare(step.name);
  const input = (async function* () {
    for await (const r of rows) {
      report.rowIn(step.name);
      yield r;
    }
  })();
  return (async function* () {
    for await (const r of step.run(input, ctx)) {
      report.rowOut(step.name, r);
      await sink.flush();
      yield r;
    }
    await sink.flush();
  })();
}

/** Counts rows leaving the source (its `in` is the number of records read, set by the report builder). */
export function countOut(step: string, rows: AsyncIterable<DataRow>, report: RunReportBuilder, sink: RejectSink) {
  return (async function* () {
    for await (const r of rows) {
      report.rowOut(step, r);
      await sink.flush();
      yield r;
    }
    await sink.flush();
  })();
}
// ---------------------------------------------------------------------------------------------------------------
// Reading inputs

const IMPORTER_FORMATTINGS = new Set(['alpaca', 'sharegpt', 'openai']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SourceState {
  rows: number;
  bytesDone: number;
  totalBytes: number;
  files: string[];
  /** Where warnings about the inputs go (an empty input file); default: nowhere. */
  warn?: (message: string) => void;
}

function inputPatterns(inp: DataInputConfig): string[] {
  return Array.isArray(inp.path) ? inp.path : [inp.path];
}

/** Files of every input (absolute), after shard selection. */
export function planFiles(
  cfg: Pick<DataConfig, 'inputs'>,
  baseDir: string,
  shard?: ShardSpec,
): { input: DataInputConfig; files: string[] }[] {
  const plan = cfg.inputs.map((input) => {
    const patterns = inputPatterns(input);
    let files: string[];
    if (input.formatting === 'llamafactory') {
      files = patterns.map((p) => resolve(baseDir, p));
      for (const f of files) {
        if (!existsSync(f)) {
          throw new LoomError('INPUT_NOT_FOUND', `dataset registry not found: ${f}`, { file: f, field: 'inputs.path' });
        }
      }
    } else {
      files = expandInputs(patterns, { baseDir });
    }
    if (files.length === 0) {
      throw new LoomError('INPUT_NOT_FOUND', `input ${patterns.join(', ')} matches no files`, {
        field: 'inputs.path',
        hint: `paths resolve against ${baseDir}`,
      });
    }
    return { input, files };
  });
  if (!shard) return plan;
  const mine = new Set(
    selectShardFiles(
      plan.flatMap((p) => p.files),
      shard,
    ),
  );
  return plan.map((p) => ({ input: p.input, files: p.files.filter((f) => mine.has(f)) }));
}

export async function* sourceRows(
  plan: { input: DataInputConfig; files: string[] }[],
  baseDir: string,
  ctx: StepContext,
  report: RunReportBuilder,
  state: SourceState,
  progress: Progress,
): AsyncGenerator<DataRow> {
  const delay = Number(process.env.LOOM_DATA_DELAY_MS ?? 0);
  const importer = (inp: DataInputConfig) => {
    const importerCols = IMPORTER_FORMATTINGS.has(inp.formatting);
    return (row: DataRow): DataRow | undefined => {
      const fmt: InputFormatName = inp.formatting === 'llamafactory' ? 'auto' : inp.formatting;
      try {
        const out = importDataRow(row, fmt, { columns: importerCols ? inp.columns : undefined, tags: inp.tags });
        out.meta = { ...out.meta, origin: inp.name ?? inputPatterns(inp)[0] };
        return out;
      } catch (e) {
        if (!(e instanceof LoomError)) throw e;
        if (ctx.strict) throw e;
        ctx.reject({
          step: 'ingest',
          reason: `format: ${e.message}`,
          action: 'dropped',
          source: row.source,
          row: recordOf(row),
        });
        return undefined;
      }
    };
  };
  for (const { input, files } of plan) {
    for (const abs of files) {
      const size = statSync(abs).size;
      if (size === 0) {
        // An empty file is legal but almost always a mistake (a failed export): say so instead of silently
        // contributing nothing.
        report.count('empty_input_files', 1);
        state.warn?.(
          `warning: input ${shownPath(abs, baseDir)} is empty (0 bytes) / 警告：输入文件为空 — check the export that wrote it`,
        );
      }
      if (input.formatting === 'llamafactory') {
        for await (const it of readRegistryDatasets(abs, input.datasets)) {
          if ('error' in it) {
            report.inputRow();
            state.rows++;
            if (ctx.strict) throw it.error;
            ctx.reject({
              step: 'ingest',
              reason: it.error.message,
              action: 'dropped',
              source: { file: it.file, line: it.line },
              row: it.raw,
            });
            continue;
          }
          const row = it.row;
          row.meta = { ...row.meta, origin: input.name ?? it.dataset };
          report.inputRow();
          state.rows++;
          progress.tick();
          if (delay) await sleep(delay);
          yield row;
        }
      } else {
        const importerCols = IMPORTER_FORMATTINGS.has(input.formatting);
        const items = readInputs(
          [],
          ingestOptions(
            // Importer formattings use `columns` for their own mapping; ingest then keeps every field in meta.
            { ...input, columns: importerCols ? {} : (input.columns as IngestConfig['columns']) },
            { files: [abs], baseDir, strict: ctx.strict },
          ),
        );
        const imp = importer(input);
        for await (const item of items) {
          report.inputRow();
          state.rows++;
          progress.tick();
          if (delay) await sleep(delay);
          if (isMalformed(item)) {
            ctx.reject(malformedToReject(item));
            continue;
          }
          const row = imp(item);
          if (row) yield row;
        }
      }
      state.bytesDone += size;
      state.files.push(shownPath(abs, baseDir));
      // Estimate the total from bytes read so far, so the progress bar can show an ETA.
      if (state.bytesDone > 0 && state.totalBytes > state.bytesDone) {
        progress.setTotal(Math.round((state.rows * state.totalBytes) / state.bytesDone));
      } else progress.setTotal(state.rows);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Steps from the config

/** The configured steps in pipeline order (up to and including near-dedup). */
export function buildSteps(
  cfg: DataConfig,
  opts: {
    bandsOut?: string;
    countTokens?: TokenCounter;
    /** Shards only tag near-duplicates: the merge decides every cluster over all shards' rows. */
    markNear?: boolean;
  } = {},
): Step[] {
  const steps: Step[] = [];
  if (cfg.normalize !== false && cfg.normalize.enabled) steps.push(normalizeStep(cfg.normalize));
  if (cfg.filters) steps.push(qualityFilterStep(cfg.filters));
  if (cfg.pii !== false && cfg.pii.enabled) steps.push(piiStep(cfg.pii));
  steps.push(formatStep(cfg.output, opts.countTokens));
  if (cfg.dedup.exact) steps.push(exactDedupStep(cfg.dedup.exact));
  if (cfg.dedup.boilerplate) steps.push(boilerplateStep(cfg.dedup.boilerplate));
  if (cfg.dedup.near)
    steps.push(
      nearDedupStep({
        ...cfg.dedup.near,
        action: opts.markNear ? 'mark' : cfg.dedup.near.action,
        bands_out: opts.bandsOut ?? cfg.dedup.near.bands_out,
      }),
    );
  return steps;
}

// ---------------------------------------------------------------------------------------------------------------
// Run bookkeeping: hash, marker, cleanup

export const OUTPUT_FILES = [
  'train.jsonl',
  'validation.jsonl',
  'test.jsonl',
  'rejects.jsonl',
  'report.json',
  'report.html',
  'dataset_info.json',
];
export const DONE_FILE = 'DONE.json';

export function configHash(r: Resolved, files: string[], extra: unknown): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ cfg: r.cfg, extra, loom: loomVersion() }));
  for (const f of files) {
    const st = statSync(f);
    h.update(`\n${f}\t${st.size}\t${st.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 16);
}

export function readDone(outDir: string): { hash?: string; outputs?: Record<string, string> } | undefined {
  const p = join(outDir, DONE_FILE);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Removes the marker, the previous final outputs and temp files of killed runs. */
export function clearOutputs(outDir: string): void {
  rmSync(join(outDir, DONE_FILE), { force: true });
  if (!existsSync(outDir)) return;
  for (const name of readdirSync(outDir)) {
    if (OUTPUT_FILES.includes(name) || /\.tmp$/.test(name) || name.startsWith('.tmp-')) {
      rmSync(join(outDir, name), { recursive: true, force: true });
    }
  }
}

/** The config's tokenizer as a counter, loaded once per run. */
const counters = new Map<string, Promise<TokenCounter>>();
export function tokenCounterOf(r: Resolved): Promise<TokenCounter | undefined> {
  if (!r.cfg.tokenizer) return Promise.resolve(undefined);
  const path = resolve(r.baseDir, r.cfg.tokenizer);
  let c = counters.get(path);
  if (!c) {
    c = loadTokenCounter(path);
    counters.set(path, c);
    c.catch(() => counters.delete(path));
  }
  return c;
}

export function emptyCounts(): RunDataResult['counts'] {
  return { input: 0, output: 0, dropped: 0, changed: 0, malformed: 0, splits: {} };
}

function makeProgress(opts: RunDataOptions, label: string): Progress {
  return new Progress({ label, unit: 'rows', silent: opts.quiet || undefined, stream: opts.progressStream });
}

/** Rows in a file, estimated from the line density of its first MiB (exact for small files). */
export function estimateRows(file: string): number {
  const size = statSync(file).size;
  if (size === 0) return 0;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(size, 1 << 20));
    const n = readSync(fd, buf, 0, buf.length, 0);
    let lines = 0;
    for (let i = 0; i < n; i++) if (buf[i] === 10) lines++;
    return Math.max(1, Math.round((Math.max(lines, 1) * size) / n));
  } finally {
    closeSync(fd);
  }
}

/**
 * The near-dedup index is the one part whose memory grows with the corpus: its estimate (from the input files'
 * line counts) is printed before any row is read, and kept for report.json.
 */
function announceLshEstimate(r: Resolved, files: string[], report: RunReportBuilder, opts: RunDataOptions): void {
  if (!r.cfg.dedup.near) return;
  const est = estimateLshMemory(
    files.reduce((a, f) => a + estimateRows(f), 0),
    r.cfg.dedup.near,
  );
  report.setLshEstimate(est, 'near_dedup');
  if (!opts.quiet) (opts.progressStream ?? process.stderr).write(`near-dedup index: about ${est.text} (estimated)\n`);
}

/** What `openRun` opens for one run folder: temp dir, report, rejects, step context, progress and the input rows. */
export interface OpenRun {
  tmpDir: string;
  report: RunReportBuilder;
  rejectsWriter: AtomicWriter;
  sink: RejectSink;
  ctx: StepContext;
  progress: Progress;
  state: SourceState;
  /** The ingested rows (declares the `ingest` step; call once, inside the run's try). */
  source(): AsyncIterable<DataRow>;
}

/**
 * The set-up a single run and a shard share: `dir` gets the temp folder and rejects.jsonl (masked as the config's
 * PII settings say), the near-dedup memory estimate is announced before any row is read, and the rows of `plan`
 * stream through the `ingest` step.
 */
export function openRun(
  r: Resolved,
  plan: { input: DataInputConfig; files: string[] }[],
  opts: RunDataOptions,
  dir: string,
  label: string,
): OpenRun {
  mkdirSync(dir, { recursive: true });
  const tmpDir = join(dir, `.tmp-${process.pid}`);
  mkdirSync(tmpDir, { recursive: true });
  const { report, rejectsWriter, sink, ctx } = rejectContext(
    join(dir, 'rejects.jsonl'),
    tmpDir,
    opts.strict ?? false,
    rejectMasker(r.cfg.pii),
  );
  const files = plan.flatMap((p) => p.files);
  announceLshEstimate(r, files, report, opts);
  const progress = makeProgress(opts, label);
  const state: SourceState = {
    rows: 0,
    bytesDone: 0,
    totalBytes: files.reduce((a, f) => a + statSync(f).size, 0),
    files: [],
    // Warnings are not progress: --quiet silences the bar, never a sign that data may be missing.
    warn: (m) => (opts.progressStream ?? process.stderr).write(`${m}\n`),
  };
  const source = () => {
    report.declare('ingest');
    return countOut('ingest', sourceRows(plan, r.baseDir, ctx, report, state, progress), report, sink);
  };
  return { tmpDir, report, rejectsWriter, sink, ctx, progress, state, source };
}

/** The most frequent drop reasons of a finished run's report, as `step: reason (count)`. */
function topDropReasons(report: Pick<DataReport, 'steps'>, n = 3): string[] {
  const all = report.steps.flatMap((s) => Object.entries(s.dropped).map(([reason, c]) => ({ s: s.step, reason, c })));
  all.sort((a, b) => b.c - a.c);
  return all.slice(0, n).map((x) => `${x.s}: ${x.reason} (${x.c})`);
}

/**
 * A run that read rows and wrote none is a failure, not a success with empty files: it is refused (non-zero exit)
 * with the top drop reasons from its report, also when a rerun finds it up to date.
 */
export function refuseEmptyOutput(result: RunDataResult): RunDataResult {
  const c = result.counts;
  if (c.input === 0 || c.output > 0) return result;
  let reasons: string[] = [];
  const reportPath = result.outputs.report_json;
  const report = result.report ?? (reportPath && existsSync(reportPath) ? readReportJson(reportPath) : undefined);
  if (report) reasons = topDropReasons(report);
  throw new LoomError(
    'DATA_LINT',
    `${c.input} rows read, 0 written / 读取 ${c.input} 行，输出 0 行` +
      (reasons.length ? `; top reasons: ${reasons.join('; ')}` : ''),
    {
      file: result.outputs.rejects,
      hint: 'see rejects.jsonl and report.html for why every row was dropped; loosen the step that drops them (e.g. filters.preset, dedup.near.threshold)',
    },
  );
}

function readReportJson(path: string): DataReport | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as DataReport;
  } catch {
    return undefined;
  }
}
