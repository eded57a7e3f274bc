/**
 * The merge of a sharded data job (`loom data merge`): interleaves the shards' rows back into single-run order,
 * removes near- and exact duplicates across shards and writes the same outputs as a single run.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DataConfigInput } from '../config/data.ts';
import { LoomError } from '../core/errors.ts';
import { readJsonl } from '../core/jsonl.ts';
import type { DataRow, RejectRecord } from '../core/types.ts';
import { exactDedupStep } from './dedup/exact.ts';
import { estimateLshMemory } from './dedup/lsh.ts';
import { registryDatasetFiles } from './formats/llamafactory.ts';
import { shownPath } from './ingest/index.ts';
import { writeOutputs } from './outputs.ts';
import type { DataReport, StepReport } from './report/index.ts';
import {
  clearOutputs,
  meteredStep,
  planFiles,
  type Resolved,
  type RunDataOptions,
  type RunDataResult,
  rejectContext,
  resolveConfig,
} from './setup.ts';
import { fileRanks, listShardOutputs, rowsInFileOrder, runShardMerge } from './shard.ts';
import type { StepContext } from './step.ts';

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
      rows = meteredStep({ ...exact, name: 'exact_dedup_merge' }, rows, mergeCtx, report, sink);
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
