import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { defaultRegistryPath, Registry } from '../registry/db.ts';
import { PipelineStages } from '../registry/pipeline.ts';

/** Opens the registry for reading; a missing file is "no runs yet", not an empty database created as a side effect. */
function openRegistry(path: string | undefined): Registry | undefined {
  const file = path ?? defaultRegistryPath();
  return existsSync(file) ? new Registry(file) : undefined;
}

/** `loom runs list | show`: the SQLite run registry (train and eval runs with lineage and metrics). */
export function registerRuns(program: Command): void {
  const runs = program
    .command('runs')
    .description('list and show past runs recorded in the SQLite registry (.loom/registry.db or $LOOM_REGISTRY)');

  runs
    .command('list')
    .description('one line per run: id, kind, status, created, output folder')
    .option('--kind <kind>', 'only runs of this kind (e.g. train, eval)')
    .option('--registry <file>', 'registry file (default .loom/registry.db or $LOOM_REGISTRY)')
    .option('--json', 'print the runs as JSON')
    .addHelpText('after', '\nExample:\n  $ loom runs list\n  $ loom runs list --kind eval --json')
    .action((o: { kind?: string; registry?: string; json?: boolean }) => {
      const reg = openRegistry(o.registry);
      const rows = reg ? reg.listRuns(o.kind) : [];
      reg?.close();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write('no runs recorded yet (train or eval runs record themselves here)\n');
        return;
      }
      for (const r of rows) {
        process.stdout.write(`${r.id}\t${r.kind}\t${r.status}\t${r.createdAt}\t${r.outputDir}\n`);
      }
    });

  runs
    .command('show <id>')
    .description('one run: lineage, config and the last value of each metric')
    .option('--registry <file>', 'registry file (default .loom/registry.db or $LOOM_REGISTRY)')
    .option('--json', 'print the run and all its metric rows as JSON')
    .addHelpText('after', '\nExample:\n  $ loom runs show lora-20261128T1200')
    .action((id: string, o: { registry?: string; json?: boolean }) => {
      const reg = openRegistry(o.registry);
      const run = reg?.getRun(id);
      const metrics = run && reg ? reg.metrics(id) : [];
      // a `loom run` stage: its input/output content hashes and summary (src/registry/pipeline.ts)
      const stage = run && reg && run.kind.startsWith('pipeline:') ? new PipelineStages(reg).get(id) : undefined;
      reg?.close();
      if (!run) {
        throw new LoomError('INPUT_NOT_FOUND', `no run '${id}' in the registry`, {
          field: 'id',
          hint: 'see the recorded ids with `loom runs list`',
        });
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ run, metrics, ...(stage ? { stage } : {}) }, null, 2)}\n`);
        return;
      }
      const last = new Map<string, { step: number; value: number }>();
      for (const m of metrics) {
        const k = m.split && m.split !== 'train' ? `${m.split}/${m.name}` : m.name;
        const prev = last.get(k);
        if (!prev || m.step >= prev.step) last.set(k, { step: m.step, value: m.value });
      }
      const lines = [
        `${run.id} (${run.kind}, ${run.status})`,
        `  created   ${run.createdAt}${run.finishedAt ? `, finished ${run.finishedAt}` : ''}`,
        `  output    ${run.outputDir}`,
        ...(run.parentId ? [`  parent    ${run.parentId}`] : []),
        ...(run.baseModel ? [`  base      ${run.baseModel}${run.baseModelHash ? ` (${run.baseModelHash})` : ''}`] : []),
        ...(run.datasetHash ? [`  dataset   ${run.datasetHash}`] : []),
        ...[...last].map(([k, v]) => `  ${k.padEnd(20)} ${v.value} (step ${v.step})`),
        ...Object.entries(stage?.inputs ?? {}).map(([p, h]) => `  input     ${p} sha256:${h.slice(0, 16)}`),
        ...Object.entries(stage?.outputs ?? {}).map(([p, h]) => `  output    ${p} sha256:${h.slice(0, 16)}`),
        ...(stage?.summary ? stage.summary.split('\n').map((l) => `  | ${l}`) : []),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
