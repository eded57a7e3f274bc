import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DataConfig, DataInputConfig } from '../config/data.ts';
import { AtomicWriter, writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { exactKey } from './dedup/exact.ts';
import { hash53 } from './dedup/hash.ts';
import { DatasetStatsBuilder } from './report/index.ts';
import {
  buildSteps,
  emptyCounts,
  meteredStep,
  openRun,
  type Resolved,
  type RunDataOptions,
  type RunDataResult,
  tokenCounterOf,
} from './setup.ts';
import { markShardDone, shardPaths } from './shard.ts';
import { rowText, type Step } from './step.ts';

export async function runShard(
  r: Resolved,
  plan: { input: DataInputConfig; files: string[] }[],
  opts: RunDataOptions,
  hash: string,
): Promise<RunDataResult> {
  const spec = opts.shard!;
  const root = join(r.outDir, 'shards');
  const paths = shardPaths(root, spec);
  rmSync(paths.done, { force: true });
  const { tmpDir, report, rejectsWriter, sink, ctx, progress, state, source } = openRun(
    r,
    plan,
    opts,
    paths.dir,
    `data ${r.name} shard ${spec.index}/${spec.count}`,
  );
  const rowsWriter = new AtomicWriter(paths.rows);
  // Band keys are written by near-dedup into a temp name and renamed with the rest.
  const bandsTmp = `${paths.bands}.${process.pid}.tmp`;
  // Exact keys of the rows exact dedup kept: the merge drops cross-shard exact copies before near dedup with them.
  rmSync(paths.exact, { force: true });
  const exactCfg = r.cfg.dedup.exact;
  const exactWriter = exactCfg && r.cfg.dedup.near ? new AtomicWriter(paths.exact) : undefined;
  let n = 0;
  try {
    let rows = source();
    const countTokens = await tokenCounterOf(r);
    // Near-duplicates are only tagged here: a row this shard would drop may be the keeper once the other shards'
    // rows (and the cross-shard exact copies the merge removes first) are known, so the merge decides them all.
    for (const step of buildSteps(r.cfg, { bandsOut: bandsTmp, countTokens, markNear: true })) {
      rows = meteredStep(
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
