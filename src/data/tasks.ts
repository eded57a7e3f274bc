/**
 * Step-by-step data tasks behind `loom data clean|dedup|split|stats`: each reads dataset files (any format the
 * pipeline reads), runs one part of the pipeline and writes canonical JSONL plus a rejects file next to it.
 * They share the pipeline's readers, steps and reject handling, so results match a full `loom data run`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { z } from 'zod';
import { type DataInputConfig, dataInputConfig } from '../config/data.ts';
import { type filtersConfig, normalizeConfig, type piiConfig } from '../config/data-clean.ts';
import type { exactDedupConfig, nearDedupConfig, splitConfig } from '../config/data-dedup.ts';
import { validateConfig } from '../config/load.ts';
import { AtomicWriter } from '../core/atomic.ts';
import { Progress } from '../core/progress.ts';
import type { DataRow, RejectRecord } from '../core/types.ts';
import { exactDedupStep } from './dedup/exact.ts';
import { nearDedupStep } from './dedup/near.ts';
import { qualityFilterStep } from './filters/index.ts';
import { toCanonical } from './formats/canonical.ts';
import { loadTokenCounter } from './lint.ts';
import { normalizeStep } from './normalize.ts';
import { piiStep, rejectMasker } from './pii.ts';
import { type DataReport, DatasetStatsBuilder, RunReportBuilder, writeReport } from './report/index.ts';
import { countOut, meteredStep, planFiles, rejectContext, type SourceState, sourceRows } from './setup.ts';
import { assignSplits, SPLITS, type SplitName } from './split.ts';
import type { Step, StepContext } from './step.ts';

export interface TaskInputOptions {
  /** Files, folders or globs. */
  inputs: string[];
  /** Record shape of the inputs (default auto), with the importer's columns/tags. */
  formatting?: DataInputConfig['formatting'];
  columns?: Record<string, string>;
  tags?: DataInputConfig['tags'];
  strict?: boolean;
  quiet?: boolean;
}

export interface TaskResult {
  input: number;
  output: number;
  dropped: number;
  changed: number;
  outputs: Record<string, string>;
  report: DataReport;
}

function inputConfig(o: TaskInputOptions): DataInputConfig {
  return validateConfig(
    dataInputConfig,
    { path: o.inputs, formatting: o.formatting ?? 'auto', columns: o.columns ?? {}, tags: o.tags },
    '<inputs>',
  );
}

/** Runs steps over input files and writes the kept rows (canonical JSONL) and `<out>.rejects.jsonl`. */
async function runTask(
  name: string,
  o: TaskInputOptions,
  steps: Step[],
  out: string,
  maskRejects?: (r: RejectRecord) => RejectRecord,
): Promise<TaskResult> {
  const baseDir = process.cwd();
  const plan = planFiles({ inputs: [inputConfig(o)] }, baseDir);
  const outPath = resolve(out);
  const rejectsPath = outPath.replace(/(\.jsonl)?$/, '.rejects.jsonl');
  const tmpDir = mkdtempSync(join(tmpdir(), 'loom-data-'));
  const writer = new AtomicWriter(outPath);
  const {
    report,
    rejectsWriter: rejects,
    sink,
    ctx,
  } = rejectContext(rejectsPath, tmpDir, o.strict ?? false, maskRejects);
  const progress = new Progress({ label: `data ${name}`, unit: 'rows', silent: o.quiet || undefined });
  const state: SourceState = { rows: 0, bytesDone: 0, totalBytes: 0, files: [] };
  const stats = new DatasetStatsBuilder();
  try {
    report.declare('ingest');
    let rows: AsyncIterable<DataRow> = countOut(
      'ingest',
      sourceRows(plan, baseDir, ctx, report, state, progress),
      report,
      sink,
    );
    for (const s of steps) rows = meteredStep(s, rows, ctx, report, sink);
    for await (const row of rows) {
      await writer.write(`${JSON.stringify(toCanonical(row))}\n`);
      await stats.add(row);
    }
    await sink.flush();
    await writer.commit();
    await rejects.commit();
  } catch (e) {
    await writer.abort();
    await rejects.abort();
    throw e;
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  progress.done();
  const built = report.build({
    title: `loom data ${name}`,
    inputs: state.files,
    output: stats.build(),
    splits: {},
    outputs: { rows: outPath, rejects: rejectsPath },
  });
  return {
    input: built.totals.input_rows,
    output: built.totals.output_rows,
    dropped: built.totals.dropped,
    changed: built.totals.changed,
    outputs: built.outputs,
    report: built,
  };
}

export interface CleanOptions extends TaskInputOptions {
  output: string;
  normalize?: z.input<typeof normalizeConfig> | false;
  filters?: z.input<typeof filtersConfig> | false;
  pii?: z.input<typeof piiConfig> | false;
}

/** Normalise, quality-filter and mask PII (each optional), writing canonical rows and rejects. */
export async function cleanDataset(o: CleanOptions): Promise<TaskResult> {
  const steps: Step[] = [];
  if (o.normalize !== false) steps.push(normalizeStep(normalizeConfig.parse(o.normalize ?? {})));
  if (o.filters !== false) steps.push(qualityFilterStep(o.filters ?? {}));
  if (o.pii !== false) steps.push(piiStep(o.pii ?? {}));
  return runTask('clean', o, steps, o.output, o.pii === false ? undefined : rejectMasker(o.pii ?? {}));
}

export interface DedupOptions extends TaskInputOptions {
  output: string;
  exact?: z.input<typeof exactDedupConfig> | false;
  near?: z.input<typeof nearDedupConfig> | false;
}

/** Exact and (optionally) near-duplicate removal; every removed row names the row it duplicates. */
export async function dedupDataset(o: DedupOptions): Promise<TaskResult> {
  const steps: Step[] = [];
  if (o.exact !== false) steps.push(exactDedupStep(o.exact ?? {}));
  if (o.near) steps.push(nearDedupStep(o.near));
  return runTask('dedup', o, steps, o.output);
}

export interface SplitOptions extends TaskInputOptions {
  outDir: string;
  split?: z.input<typeof splitConfig>;
}

/** Splits rows into train/validation/test JSONL (canonical) in outDir. */
export async function splitDataset(
  o: SplitOptions,
): Promise<{ counts: Record<SplitName, number>; outputs: Record<string, string> }> {
  const baseDir = process.cwd();
  const plan = planFiles({ inputs: [inputConfig(o)] }, baseDir);
  const outDir = resolve(o.outDir);
  mkdirSync(outDir, { recursive: true });
  const tmpDir = mkdtempSync(join(tmpdir(), 'loom-split-'));
  const {
    report,
    rejectsWriter: rejects,
    sink,
    ctx,
  } = rejectContext(join(outDir, 'rejects.jsonl'), tmpDir, o.strict ?? false);
  const writers = Object.fromEntries(SPLITS.map((s) => [s, new AtomicWriter(join(outDir, `${s}.jsonl`))])) as Record<
    SplitName,
    AtomicWriter
  >;
  const counts: Record<SplitName, number> = { train: 0, validation: 0, test: 0 };
  const progress = new Progress({ label: 'data split', unit: 'rows', silent: o.quiet || undefined });
  try {
    const rows = sourceRows(plan, baseDir, ctx, report, { rows: 0, bytesDone: 0, totalBytes: 0, files: [] }, progress);
    for await (const { split, row } of assignSplits(rows, o.split ?? {}, { tmpDir })) {
      await writers[split].write(`${JSON.stringify(toCanonical(row))}\n`);
      counts[split]++;
      await sink.flush();
    }
    await sink.flush();
    for (const w of Object.values(writers)) await w.commit();
    await rejects.commit();
  } catch (e) {
    for (const w of Object.values(writers)) await w.abort();
    await rejects.abort();
    throw e;
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  progress.done();
  const outputs: Record<string, string> = { rejects: join(outDir, 'rejects.jsonl') };
  for (const s of SPLITS) outputs[s] = join(outDir, `${s}.jsonl`);
  return { counts, outputs };
}

export interface StatsOptions extends TaskInputOptions {
  /** tokenizer.json or a folder with one: adds token-length histograms. */
  tokenizer?: string;
  /** Folder for report.json and report.html (default: none written). */
  outDir?: string;
  title?: string;
}

/** The data report of any dataset files (without running steps): lengths, tokens, languages, labels. */
export async function datasetStats(o: StatsOptions): Promise<{ report: DataReport; outputs: Record<string, string> }> {
  const baseDir = process.cwd();
  const plan = planFiles({ inputs: [inputConfig(o)] }, baseDir);
  const report = new RunReportBuilder();
  const counter = o.tokenizer ? await loadTokenCounter(o.tokenizer) : undefined;
  const stats = new DatasetStatsBuilder(counter);
  const tmpDir = mkdtempSync(join(tmpdir(), 'loom-stats-'));
  const malformed: string[] = [];
  const ctx: StepContext = {
    reject: (r) => {
      report.reject(r);
      malformed.push(`${r.source.file}:${r.source.line}: ${r.reason}`);
    },
    count: (k, n) => report.count(k, n),
    tmpDir,
    strict: o.strict ?? false,
  };
  const state: SourceState = { rows: 0, bytesDone: 0, totalBytes: 0, files: [] };
  const progress = new Progress({ label: 'data stats', unit: 'rows', silent: o.quiet || undefined });
  try {
    report.declare('ingest');
    for await (const row of sourceRows(plan, baseDir, ctx, report, state, progress)) {
      report.rowOut('ingest', row);
      await stats.add(row);
    }
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  progress.done();
  const outputs: Record<string, string> = {};
  if (o.outDir) {
    outputs.report_json = join(resolve(o.outDir), 'report.json');
    outputs.report_html = join(resolve(o.outDir), 'report.html');
  }
  const built = report.build({
    title: o.title ?? `Dataset statistics: ${state.files.map((f) => basename(f)).join(', ')}`,
    inputs: state.files,
    output: stats.build(),
    splits: {},
    outputs,
    tokenizer: o.tokenizer,
  });
  if (o.outDir) writeReport(built, outputs.report_json!, outputs.report_html!);
  return { report: built, outputs };
}
