/**
 * The data pipeline runner behind `loom data run data.yaml`:
 *
 *   inputs ─ ingest (src/data/ingest) ─ import (formats/) ─ normalize ─ filters ─ pii ─ format ─ exact_dedup
 *          ─ boilerplate ─ near_dedup ─ split ─ train/validation/test.jsonl + rejects.jsonl + report.{json,html}
 *
 * Every step streams rows; everything dropped or changed goes to rejects.jsonl with step, reason and source.
 * Outputs appear atomically: all files are written under temporary names and renamed at the end, then a
 * DONE.json marker (with the config hash) is written last. A new run first removes the marker and the previous
 * outputs, so a killed job leaves no final outputs at all, and a rerun starts cleanly. A rerun of a finished job
 * with the same config and unchanged inputs is a no-op unless `force`.
 *
 * With `shard: {index, count}` the run reads only its share of the input files (round-robin over sorted paths),
 * stops after near-dedup and writes rows, LSH band keys and rejects to `<out>/shards/shard-i-of-N/`;
 * `mergeDataShards` then interleaves the shards' rows back into single-run order, removes near- and exact
 * duplicates across shards and finishes the job (split, outputs, report): the same train/validation/test files
 * as a single run.
 *
 * Test hook: LOOM_DATA_DELAY_MS=<ms> sleeps that long per input row (to kill a run mid-way in tests).
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
import { basename, dirname, extname, join, resolve } from 'node:path';
import { type DataConfig, type DataConfigInput, type DataInputConfig, dataConfig } from '../config/data.ts';
import type { IngestConfig } from '../config/data-clean.ts';
import { loadConfig, validateConfig } from '../config/load.ts';
import { AtomicWriter, writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { readJsonl } from '../core/jsonl.ts';
import { Progress } from '../core/progress.ts';
import type { DataRow, RejectRecord } from '../core/types.ts';
import { loomVersion } from '../core/version.ts';
import { boilerplateStep } from './dedup/boilerplate.ts';
import { exactDedupStep, exactKey } from './dedup/exact.ts';
import { hash53 } from './dedup/hash.ts';
import { estimateLshMemory } from './dedup/lsh.ts';
import { nearDedupStep } from './dedup/near.ts';
import { qualityFilterStep } from './filters/index.ts';
import { isRecord } from './formats/common.ts';
import { exportRow, type FormatName, type InputFormatName, importDataRow, recordOf, rowKind } from './formats/index.ts';
import { readRegistryDatasets, registryDatasetFiles, registryEntryFor, writeRegistry } from './formats/llamafactory.ts';
import { expandInputs, ingestOptions, isMalformed, malformedToReject, readInputs, shownPath } from './ingest/index.ts';
import { conversationProblems, loadTokenCounter, rowTokens, type TokenCounter } from './lint.ts';
import { normalizeStep } from './normalize.ts';
import { piiStep, rejectMasker } from './pii.ts';
import {
  type DataReport,
  DatasetStatsBuilder,
  RunReportBuilder,
  type StepReport,
  writeReport,
} from './report/index.ts';
import {
  fileRanks,
  listShardOutputs,
  markShardDone,
  rowsInFileOrder,
  runShardMerge,
  type ShardSpec,
  selectShardFiles,
  shardPaths,
} from './shard.ts';
import { assignSplits, SPLITS, type SplitName } from './split.ts';
import { rowText, type Step, type StepContext } from './step.ts';

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

interface Resolved {
  cfg: DataConfig;
  baseDir: string;
  outDir: string;
  configPath?: string;
  name: string;
}

function resolveConfig(config: string | DataConfigInput, opts: RunDataOptions): Resolved {
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
  ) {}

  push(r: RejectRecord): void {
    this.count++;
    const rec = this.transform ? this.transform(r) : r;
    this.report.reject(rec);
    this.pending.push(JSON.stringify(rec));
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

export function runStep(
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

// ---------------------------------------------------------------------------------------------------------------
// Reading inputs

const IMPORTER_FORMATTINGS = new Set(['alpaca', 'sharegpt', 'openai']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SourceState {
  rows: number;
  bytesDone: number;
  totalBytes: number;
  files: string[];
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
// The `format` step: system prompt, labels, and the shape the output format needs

const CONVERSATION_FORMATS = new Set<FormatName>(['messages', 'openai', 'sharegpt', 'alpaca']);

export function formatStep(out: DataConfig['output'], countTokens?: TokenCounter): Step {
  const allowed = out.labels ? new Set(out.labels) : undefined;
  return {
    name: 'format',
    async *run(rows, ctx) {
      for await (const input of rows) {
        let row = input;
        const drop = (reason: string, detail?: Record<string, unknown>) =>
          ctx.reject({ step: 'format', reason, action: 'dropped', source: row.source, row, detail });
        if (row.label !== undefined && out.label_map[row.label] !== undefined) {
          row = { ...row, label: out.label_map[row.label] };
        }
        const kind = rowKind(row);
        const fmt = out.format;
        const ok =
          fmt === 'text'
            ? kind === 'text' || kind === 'classification'
            : fmt === 'classification'
              ? kind === 'classification'
              : fmt === 'preference'
                ? kind === 'preference'
                : kind === 'messages' || (kind === 'preference' && fmt !== 'messages');
        if (!ok) {
          drop(`format.kind_mismatch`, { kind, output: fmt });
          continue;
        }
        if (allowed && row.label !== undefined && !allowed.has(row.label)) {
          drop('format.label_not_in_set', { label: row.label });
          continue;
        }
        if (CONVERSATION_FORMATS.has(fmt) || fmt === 'preference') {
          const field = row.messages ? 'messages' : 'prompt';
          let msgs = row[field] ?? [];
          // The configured system prompt is added when rows are written (withSystemPrompt), not here: dedup
          // must compare what users and agents said, not a shared prompt that makes every row look alike.
          if (out.system_prompt !== undefined && out.system_mode === 'replace' && msgs[0]?.role === 'system') {
            if (msgs[0].content !== out.system_prompt) {
              ctx.reject({
                step: 'format',
                reason: 'format.system_replaced',
                action: 'changed',
                source: row.source,
                row,
              });
            }
            msgs = msgs.slice(1);
            row = { ...row, [field]: msgs };
          }
          const problems = conversationProblems(withSystemPrompt(row, out)[field] ?? [], field === 'prompt').filter(
            (p) => p.severity === 'error',
          );
          if (problems.length) {
            drop(`format.${problems[0]!.code}`, { problems: problems.map((p) => p.message) });
            continue;
          }
        } else if (kind === 'text' || kind === 'classification') {
          if (!row.text || row.text.trim() === '') {
            drop('format.empty_text');
            continue;
          }
        }
        if (out.keep_meta !== true) {
          const keep = out.keep_meta === false ? [] : out.keep_meta;
          const meta: Record<string, unknown> = {};
          for (const k of keep) if (row.meta[k] !== undefined) meta[k] = row.meta[k];
          // dup_cluster is how the split keeps near-duplicates together; it must survive until then.
          if (row.meta.dup_cluster !== undefined) meta.dup_cluster = row.meta.dup_cluster;
          row = { ...row, meta };
        }
        if (out.cutoff_len !== undefined && countTokens) {
          const tokens = await rowTokens(withSystemPrompt(row, out), countTokens);
          if (tokens > out.cutoff_len) {
            drop('format.too_long', { tokens, cutoff_len: out.cutoff_len });
            continue;
          }
        }
        try {
          exportRow(withSystemPrompt(row, out), fmt);
        } catch (e) {
          if (!(e instanceof LoomError)) throw e;
          drop('format.export', { error: e.message });
          continue;
        }
        yield row;
      }
    },
  };
}

/** The row as written: with the configured system prompt in front of its conversation (unless it has one). */
export function withSystemPrompt(row: DataRow, out: DataConfig['output']): DataRow {
  if (out.system_prompt === undefined || out.system_mode === 'keep') return row;
  const field = row.messages ? 'messages' : row.prompt ? 'prompt' : undefined;
  if (!field) return row;
  const msgs = row[field]!;
  if (msgs[0]?.role === 'system') return row;
  return { ...row, [field]: [{ role: 'system', content: out.system_prompt }, ...msgs] };
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

const OUTPUT_FILES = [
  'train.jsonl',
  'validation.jsonl',
  'test.jsonl',
  'rejects.jsonl',
  'report.json',
  'report.html',
  'dataset_info.json',
];
export const DONE_FILE = 'DONE.json';

function configHash(r: Resolved, files: string[], extra: unknown): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ cfg: r.cfg, extra, loom: loomVersion() }));
  for (const f of files) {
    const st = statSync(f);
    h.update(`\n${f}\t${st.size}\t${st.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 16);
}

function readDone(outDir: string): { hash?: string; outputs?: Record<string, string> } | undefined {
  const p = join(outDir, DONE_FILE);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Removes the marker, the previous final outputs and temp files of killed runs. */
function clearOutputs(outDir: string): void {
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
function tokenCounterOf(r: Resolved): Promise<TokenCounter | undefined> {
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

function emptyCounts(): RunDataResult['counts'] {
  return { input: 0, output: 0, dropped: 0, changed: 0, malformed: 0, splits: {} };
}

function makeProgress(opts: RunDataOptions, label: string): Progress {
  return new Progress({ label, unit: 'rows', silent: opts.quiet || undefined, stream: opts.progressStream });
}

// ---------------------------------------------------------------------------------------------------------------
// Writing the final outputs (shared by a normal run and a shard merge)

async function writeOutputs(
  r: Resolved,
  rows: AsyncIterable<DataRow>,
  ctx: StepContext,
  report: RunReportBuilder,
  sink: RejectSink,
  rejectsWriter: AtomicWriter,
  t0: number,
  inputsShown: string[],
  hash: string,
): Promise<RunDataResult> {
  const { cfg, outDir } = r;
  const fmt = cfg.output.format;
  const writers: Record<SplitName, AtomicWriter> = {
    train: new AtomicWriter(join(outDir, 'train.jsonl')),
    validation: new AtomicWriter(join(outDir, 'validation.jsonl')),
    test: new AtomicWriter(join(outDir, 'test.jsonl')),
  };
  const counter = await tokenCounterOf(r);
  const stats = new DatasetStatsBuilder(counter);
  const splitCounts: Record<string, number> = { train: 0, validation: 0, test: 0 };
  const splitLabels: Record<string, Record<string, number>> = {};
  const all = Object.values(writers);
  try {
    const split = cfg.split
      ? assignSplits(rows, cfg.split, { tmpDir: ctx.tmpDir })
      : (async function* () {
          for await (const row of rows) yield { split: 'train' as SplitName, row };
        })();
    report.declare('split');
    for await (const { split: s, row } of split) {
      report.rowIn('split');
      report.rowOut('split');
      const written = withSystemPrompt(row, cfg.output);
      const obj = exportRow(written, fmt);
      // dup_cluster(_size) only served the split (near-dedup sets them after the format step's keep_meta): with
      // keep_meta a list or false, only the listed fields reach the output.
      if (isRecord(obj.meta) && cfg.output.keep_meta !== true) {
        const keep = cfg.output.keep_meta === false ? [] : cfg.output.keep_meta;
        for (const k of ['dup_cluster', 'dup_cluster_size']) if (!keep.includes(k)) delete obj.meta[k];
      }
      await writers[s].write(`${JSON.stringify(obj)}\n`);
      splitCounts[s]!++;
      if (written.label !== undefined) {
        const m = (splitLabels[s] ??= {});
        m[written.label] = (m[written.label] ?? 0) + 1;
      }
      await stats.add(written);
      await sink.flush();
    }
    await sink.flush();
    for (const w of all) await w.commit();
    await rejectsWriter.commit();
  } catch (e) {
    for (const w of all) await w.abort();
    await rejectsWriter.abort();
    throw e;
  }
  const outputs: Record<string, string> = {};
  for (const s of SPLITS) outputs[s] = join(outDir, `${s}.jsonl`);
  outputs.rejects = join(outDir, 'rejects.jsonl');
  const outStats = stats.build();
  if (cfg.output.llamafactory && ['messages', 'openai', 'sharegpt', 'alpaca', 'text'].includes(fmt)) {
    // Preference rows need `ranking: true`; LLaMA-Factory reads those only as sharegpt or alpaca.
    const ranking = (outStats.kinds.preference ?? 0) > 0;
    const entries: Record<string, ReturnType<typeof registryEntryFor>> = {};
    try {
      for (const s of SPLITS)
        if (splitCounts[s]) entries[`${r.name}_${s}`] = registryEntryFor(`${s}.jsonl`, fmt, ranking);
      outputs.dataset_info = writeRegistry(outDir, entries);
    } catch (e) {
      if (!(e instanceof LoomError)) throw e;
    }
  }
  outputs.report_json = join(outDir, 'report.json');
  outputs.report_html = join(outDir, 'report.html');
  const report_ = report.build({
    title: cfg.report.title ?? `Data report: ${r.name}`,
    inputs: inputsShown,
    output: outStats,
    splits: splitCounts,
    split_labels: Object.keys(splitLabels).length ? splitLabels : undefined,
    outputs,
    tokenizer: cfg.tokenizer,
    duration_s: (Date.now() - t0) / 1000,
  });
  writeReport(report_, outputs.report_json, outputs.report_html);
  const counts = {
    input: report_.totals.input_rows,
    output: report_.totals.output_rows,
    dropped: report_.totals.dropped,
    changed: report_.totals.changed,
    malformed: report_.totals.malformed,
    splits: splitCounts,
  };
  writeJsonAtomic(join(outDir, DONE_FILE), { hash, finished: new Date().toISOString(), counts, outputs });
  return { status: 'done', outDir, counts, outputs, report: report_ };
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points

export interface DataPlan {
  name: string;
  outDir: string;
  config: DataConfig;
  steps: string[];
  inputs: { file: string; bytes: number; estimated_rows: number }[];
  estimated_rows: number;
  /** Up-front estimate of the near-dedup index memory (src/data/dedup/lsh.ts), when near-dedup is on. */
  near_dedup_memory?: string;
}

/** Rows in a file, estimated from the line density of its first MiB (exact for small files). */
function estimateRows(file: string): number {
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

/** What a run would do, without doing it: resolved config, files, steps and the near-dedup memory estimate. */
export function planDataPipeline(config: string | DataConfigInput, opts: RunDataOptions = {}): DataPlan {
  const r = resolveConfig(config, opts);
  const plan = planFiles(r.cfg, r.baseDir, opts.shard);
  const inputs = plan.flatMap((p) =>
    p.files.map((f) => ({ file: shownPath(f, r.baseDir), bytes: statSync(f).size, estimated_rows: estimateRows(f) })),
  );
  const rows = inputs.reduce((a, i) => a + i.estimated_rows, 0);
  const steps = ['ingest', ...buildSteps(r.cfg).map((s) => s.name), ...(r.cfg.split ? ['split'] : [])];
  const near = r.cfg.dedup.near;
  return {
    name: r.name,
    outDir: r.outDir,
    config: r.cfg,
    steps,
    inputs,
    estimated_rows: rows,
    near_dedup_memory: near ? estimateLshMemory(rows, near).text : undefined,
  };
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

/** Runs a data.yaml (path) or a config object end to end. */
export async function runDataPipeline(
  config: string | DataConfigInput,
  opts: RunDataOptions = {},
): Promise<RunDataResult> {
  const r = resolveConfig(config, opts);
  const t0 = Date.now();
  const plan = planFiles(r.cfg, r.baseDir, opts.shard);
  const allFiles = plan.flatMap((p) => p.files);
  const hash = configHash(r, allFiles, { shard: opts.shard ?? null });
  if (opts.shard) return runShard(r, plan, opts, hash);

  for (const f of allFiles) {
    if (resolve(f, '..') === r.outDir && OUTPUT_FILES.includes(basename(f))) {
      throw new LoomError('CONFIG_INVALID', `out_dir ${r.outDir} holds the input ${f}, which the run would replace`, {
        field: 'out_dir',
        hint: 'write the outputs to another folder (out_dir: out/data)',
      });
    }
  }
  const prev = readDone(r.outDir);
  if (!opts.force && prev?.hash === hash && prev.outputs && Object.values(prev.outputs).every((p) => existsSync(p))) {
    const done = JSON.parse(readFileSync(join(r.outDir, DONE_FILE), 'utf8')) as { counts: RunDataResult['counts'] };
    return { status: 'up-to-date', outDir: r.outDir, counts: done.counts ?? emptyCounts(), outputs: prev.outputs };
  }
  clearOutputs(r.outDir);
  mkdirSync(r.outDir, { recursive: true });
  const tmpDir = join(r.outDir, `.tmp-${process.pid}`);
  mkdirSync(tmpDir, { recursive: true });
  const { report, rejectsWriter, sink, ctx } = rejectContext(
    join(r.outDir, 'rejects.jsonl'),
    tmpDir,
    opts.strict ?? false,
    rejectMasker(r.cfg.pii),
  );
  announceLshEstimate(r, allFiles, report, opts);
  const progress = makeProgress(opts, `data ${r.name}`);
  const state: SourceState = {
    rows: 0,
    bytesDone: 0,
    totalBytes: allFiles.reduce((a, f) => a + statSync(f).size, 0),
    files: [],
  };
  try {
    report.declare('ingest');
    let rows: AsyncIterable<DataRow> = sourceRows(plan, r.baseDir, ctx, report, state, progress);
    rows = countOut('ingest', rows, report, sink);
    for (const step of buildSteps(r.cfg, { countTokens: await tokenCounterOf(r) }))
      rows = runStep(step, rows, ctx, report, sink);
    const res = await writeOutputs(
      r,
      rows,
      ctx,
      report,
      sink,
      rejectsWriter,
      t0,
      allFiles.map((f) => shownPath(f, r.baseDir)),
      hash,
    );
    progress.done({ output: res.counts.output });
    return res;
  } catch (e) {
    await rejectsWriter.abort();
    throw e;
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
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

async function runShard(
  r: Resolved,
  plan: { input: DataInputConfig; files: string[] }[],
  opts: RunDataOptions,
  hash: string,
): Promise<RunDataResult> {
  const spec = opts.shard!;
  const root = join(r.outDir, 'shards');
  const paths = shardPaths(root, spec);
  rmSync(paths.done, { force: true });
  mkdirSync(paths.dir, { recursive: true });
  const tmpDir = join(paths.dir, `.tmp-${process.pid}`);
  mkdirSync(tmpDir, { recursive: true });
  const { report, rejectsWriter, sink, ctx } = rejectContext(
    join(paths.dir, 'rejects.jsonl'),
    tmpDir,
    opts.strict ?? false,
    rejectMasker(r.cfg.pii),
  );
  announceLshEstimate(
    r,
    plan.flatMap((p) => p.files),
    report,
    opts,
  );
  const rowsWriter = new AtomicWriter(paths.rows);
  const progress = makeProgress(opts, `data ${r.name} shard ${spec.index}/${spec.count}`);
  const files = plan.flatMap((p) => p.files);
  const state: SourceState = {
    rows: 0,
    bytesDone: 0,
    totalBytes: files.reduce((a, f) => a + statSync(f).size, 0),
    files: [],
  };
  // Band keys are written by near-dedup into a temp name and renamed with the rest.
  const bandsTmp = `${paths.bands}.${process.pid}.tmp`;
  // Exact keys of the rows exact dedup kept: the merge drops cross-shard exact copies before near dedup with them.
  rmSync(paths.exact, { force: true });
  const exactCfg = r.cfg.dedup.exact;
  const exactWriter = exactCfg && r.cfg.dedup.near ? new AtomicWriter(paths.exact) : undefined;
  let n = 0;
  try {
    report.declare('ingest');
    let rows: AsyncIterable<DataRow> = countOut(
      'ingest',
      sourceRows(plan, r.baseDir, ctx, report, state, progress),
      report,
      sink,
    );
    const countTokens = await tokenCounterOf(r);
    // Near-duplicates are only tagged here: a row this shard would drop may be the keeper once the other shards'
    // rows (and the cross-shard exact copies the merge removes first) are known, so the merge decides them all.
    for (const step of buildSteps(r.cfg, { bandsOut: bandsTmp, countTokens, markNear: true })) {
      rows = runStep(
        exactWriter && exactCfg && step.name === 'exact_dedup' ? recordExactKeys(step, exactCfg, exactWriter) : step,
        rows,
        ctx,
        report,
        sink,
      );
    }
    for await (const row of rows) {
      await rowsWriter.write(`${JSON.stringify(row)}\n`);
      n++;
    }
    await sink.flush();
    await exactWriter?.commit();
    await rowsWriter.commit();
    await rejectsWriter.commit();
    if (existsSync(bandsTmp)) {
      const { renameSync } = await import('node:fs');
      renameSync(bandsTmp, paths.bands);
    } else writeFileAtomic(paths.bands, '');
    const built = report.build({
      title: r.name,
      inputs: state.files,
      output: new DatasetStatsBuilder().build(),
      splits: {},
      outputs: {},
    });
    writeJsonAtomic(join(paths.dir, 'report.json'), built);
    markShardDone(root, spec, { rows: n, hash });
    progress.done({ rows: n });
    return {
      status: 'shard-done',
      outDir: paths.dir,
      counts: {
        ...emptyCounts(),
        input: state.rows,
        output: n,
        dropped: built.totals.dropped,
        changed: built.totals.changed,
        malformed: built.totals.malformed,
      },
      outputs: { rows: paths.rows, bands: paths.bands, rejects: join(paths.dir, 'rejects.jsonl') },
    };
  } catch (e) {
    await rowsWriter.abort();
    await rejectsWriter.abort();
    await exactWriter?.abort();
    rmSync(bandsTmp, { force: true });
    throw e;
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** Passes a shard's exact-dedup step through, writing `{"id","key"}` for every row it keeps (for the merge). */
function recordExactKeys(step: Step, cfg: Exclude<DataConfig['dedup']['exact'], false>, out: AtomicWriter): Step {
  return {
    name: step.name,
    async *run(rows, ctx) {
      for await (const row of step.run(rows, ctx)) {
        await out.write(`${JSON.stringify({ id: row.id, key: hash53(exactKey(rowText(row), cfg)) })}\n`);
        yield row;
      }
    },
  };
}

/** Input files as rows name them (`source.file`), in the order a single run reads them; undefined if unknown. */
function mergeFileOrder(r: Resolved): string[] | undefined {
  try {
    return planFiles(r.cfg, r.baseDir).flatMap((p) =>
      p.files.flatMap((f) =>
        // Rows of a LLaMA-Factory registry name its data files, not the registry.
        p.input.formatting === 'llamafactory' ? registryDatasetFiles(f, p.input.datasets) : [shownPath(f, r.baseDir)],
      ),
    );
  } catch (e) {
    // The merge machine may not see the raw inputs; then files are ordered by path.
    if (e instanceof LoomError && e.code === 'INPUT_NOT_FOUND') return undefined;
    throw e;
  }
}

/** Lines of a file, read in 1 MiB chunks (band files can be large). */
function countLines(path: string): number {
  if (!existsSync(path)) return 0;
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    let n = 0;
    for (let got = readSync(fd, buf); got > 0; got = readSync(fd, buf)) {
      for (let i = 0; i < got; i++) if (buf[i] === 10) n++;
    }
    return n;
  } finally {
    closeSync(fd);
  }
}

/**
 * Finishes a sharded job: joins the shards (dropping near-duplicates across shards when near-dedup is on), then
 * splits and writes the outputs and report exactly like a single run.
 */
export async function mergeDataShards(
  config: string | DataConfigInput,
  opts: RunDataOptions = {},
): Promise<RunDataResult> {
  const r = resolveConfig(config, opts);
  const t0 = Date.now();
  const root = join(r.outDir, 'shards');
  const inputs = listShardOutputs(root);
  clearOutputs(r.outDir);
  const tmpDir = join(r.outDir, `.tmp-${process.pid}`);
  mkdirSync(tmpDir, { recursive: true });
  // Shard rejects were masked by the shards.
  const { report, rejectsWriter, sink, ctx } = rejectContext(
    join(r.outDir, 'rejects.jsonl'),
    tmpDir,
    opts.strict ?? false,
  );
  try {
    // Shard rejects and step counts first, so the report covers the whole job.
    const shardSteps = new Map<string, StepReport>();
    const inputsShown: string[] = [];
    for (const s of inputs) {
      const dir = dirname(s.rows);
      const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as DataReport;
      inputsShown.push(...rep.inputs);
      for (const [k, v] of Object.entries(rep.counters)) report.count(k, v);
      for (let i = 0; i < rep.totals.input_rows; i++) report.inputRow();
      for (const st of rep.steps) {
        const acc = shardSteps.get(st.step) ?? { step: st.step, in: 0, out: 0, dropped: {}, changed: {} };
        acc.in += st.in;
        acc.out += st.out;
        shardSteps.set(st.step, acc);
      }
    }
    for (const st of shardSteps.values()) {
      report.declare(st.step);
      for (let i = 0; i < st.in; i++) report.rowIn(st.step);
      for (let i = 0; i < st.out; i++) report.rowOut(st.step);
    }
    for (const s of inputs) {
      for await (const rec of readJsonl(join(dirname(s.rows), 'rejects.jsonl'))) sink.push(rec as RejectRecord);
      await sink.flush();
    }
    const merged = join(tmpDir, 'merged.jsonl');
    const mergedRejects = join(tmpDir, 'merge-rejects.jsonl');
    // The order a single run reads the files in: rows are interleaved back into it, so that keep-first dedup and
    // the split (which assigns rows in stream order) give the same outputs as one run.
    const fileOrder = mergeFileOrder(r);
    if (r.cfg.dedup.near) {
      const bandRows = inputs.reduce((a, s) => a + countLines(s.bands), 0);
      if (!opts.quiet) {
        (opts.progressStream ?? process.stderr).write(
          `near-dedup merge index: about ${estimateLshMemory(bandRows, r.cfg.dedup.near).text} (estimated)\n`,
        );
      }
      report.setLshEstimate(estimateLshMemory(bandRows, r.cfg.dedup.near), 'near_dedup_merge');
      report.declare('near_dedup_merge');
      const sum = await runShardMerge({
        inputs,
        out: merged,
        rejects: mergedRejects,
        nearDedup: r.cfg.dedup.near,
        fileOrder,
      });
      for (let i = 0; i < sum.rows_in; i++) report.rowIn('near_dedup_merge');
      for (let i = 0; i < sum.rows_out; i++) report.rowOut('near_dedup_merge');
      for await (const rec of readJsonl(mergedRejects)) sink.push(rec as RejectRecord);
    }
    report.declare('merge');
    let rows: AsyncIterable<DataRow> = (async function* () {
      const ordered = r.cfg.dedup.near
        ? (async function* () {
            for await (const v of readJsonl(merged)) yield v as DataRow;
          })()
        : (async function* () {
            const rank = fileRanks(fileOrder ?? [], fileOrder);
            for await (const { row } of rowsInFileOrder(
              inputs.map((s) => s.rows),
              rank,
            ))
              yield row;
          })();
      for await (const row of ordered) {
        report.rowIn('merge');
        report.rowOut('merge', row);
        yield row;
      }
    })();
    // Exact duplicates in different shards survive the shards' own exact dedup; keep-first over the merged
    // stream (in single-run order) drops the same copies a single run drops.
    if (r.cfg.dedup.exact) {
      const exact = exactDedupStep(r.cfg.dedup.exact);
      const mergeCtx: StepContext = { ...ctx, reject: (x) => ctx.reject({ ...x, step: 'exact_dedup_merge' }) };
      rows = runStep({ ...exact, name: 'exact_dedup_merge' }, rows, mergeCtx, report, sink);
    }
    const hash = createHash('sha256').update(JSON.stringify(r.cfg)).digest('hex').slice(0, 16);
    return await writeOutputs(r, rows, ctx, report, sink, rejectsWriter, t0, inputsShown, `merge-${hash}`);
  } catch (e) {
    await rejectsWriter.abort();
    throw e;
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}
