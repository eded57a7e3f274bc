import { join } from 'node:path';
import { AtomicWriter, writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import type { DataRow } from '../core/types.ts';
import { withSystemPrompt } from './format-step.ts';
import { isRecord } from './formats/common.ts';
import { exportRow } from './formats/index.ts';
import { registryEntryFor, writeRegistry } from './formats/llamafactory.ts';
import { DatasetStatsBuilder, type RunReportBuilder, writeReport } from './report/index.ts';
import { DONE_FILE, type RejectSink, type Resolved, type RunDataResult, tokenCounterOf } from './setup.ts';
import { assignSplits, SPLITS, type SplitName } from './split.ts';
import type { StepContext } from './step.ts';
export async function writeOutputs(
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
