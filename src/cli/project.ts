import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import type { StageName } from '../pipeline/config.ts';
import { initProject } from '../pipeline/init.ts';
import { lineageOf, renderLineage } from '../pipeline/lineage.ts';
import { runPipeline } from '../pipeline/run.ts';
import { TEMPLATES } from '../pipeline/templates.ts';
import { defaultRegistryPath, Registry } from '../registry/db.ts';
import { startServe } from './serve.ts';

/** `loom init` and `loom run`: whole projects (thin shells over src/pipeline). */
export function registerInit(program: Command): void {
  program
    .command('init <dir>')
    .description('create a project folder from a template: sample data, data/train/eval/serve/pipeline YAMLs')
    .requiredOption('--template <name>', `one of ${TEMPLATES.join(', ')}`)
    .option('--no-train', 'prompt-only project: a prompt template with few-shot examples, no train/export stages')
    .addHelpText(
      'after',
      '\nThe folder must be new or empty.\n\nExample:\n  $ loom init shop --template customer-service && cd shop && loom run pipeline.yaml\n  $ loom init faq --template faq-qa --no-train',
    )
    .action((dir: string, o: { template: string; train: boolean }) => {
      const r = initProject(dir, o.template, { noTrain: !o.train });
      process.stdout.write(`created ${r.dir} from template ${r.template} / 已创建项目:\n`);
      for (const f of r.files) process.stdout.write(`  ${f}\n`);
      process.stdout.write(`\nnext / 下一步:\n  cd ${dir} && loom run pipeline.yaml\n`);
    });
}

export function registerRun(program: Command): void {
  program
    .command('run [pipeline]')
    .description('run a project pipeline: data → train → eval → export → serve, skipping unchanged stages')
    .option('--from <stage>', 'start at this stage')
    .option('--only <stage>', 'run only this stage')
    .option('--force', 'run the selected stages even when nothing changed')
    .option('--serve', 'after the pipeline, keep serving serve.yaml (Ctrl-C stops)')
    .option('--threads <n>', 'CPU threads for training')
    .option('--json', 'print the pipeline report as JSON on stdout')
    .addHelpText(
      'after',
      '\nPaths in the YAMLs are relative to the folder of pipeline.yaml (default ./pipeline.yaml).\nA killed run resumes: finished stages are skipped, training continues from its last checkpoint.\n\nExample:\n  $ loom run pipeline.yaml\n  $ loom run pipeline.yaml --from eval\n  $ loom run pipeline.yaml --only serve --serve',
    )
    .action(
      async (
        file: string | undefined,
        o: { from?: string; only?: string; force?: boolean; serve?: boolean; threads?: string; json?: boolean },
      ) => {
        if (o.from && o.only) {
          throw new LoomError(
            'CONFIG_INVALID',
            '--from and --only cannot be combined / 不能同时使用 --from 与 --only',
            {
              field: '--only',
              hint: 'use one of them',
            },
          );
        }
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once('SIGINT', stop);
        const report = await runPipeline(file ?? 'pipeline.yaml', {
          from: o.from as StageName | undefined,
          only: o.only as StageName | undefined,
          force: o.force,
          threads: o.threads ? Number(o.threads) : undefined,
          signal: ac.signal,
        });
        process.off('SIGINT', stop);
        if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else {
          for (const s of report.stages) process.stdout.write(`${s.stage}\t${s.status}\t${s.runId}\t${s.reason}\n`);
        }
        if (o.serve) {
          const s = await startServe(`${report.project}/serve.yaml`, { logLevel: 'info' });
          process.stdout.write(`listening on ${s.url}\n`);
          const close = () => s.close().then(() => process.exit(0));
          process.once('SIGINT', close);
          process.once('SIGTERM', close);
        }
      },
    );
}

export function registerLineage(program: Command): void {
  program
    .command('lineage <artefact>')
    .description(
      'where an artefact came from and what was made from it: data hash → config → checkpoint → export → endpoint → eval',
    )
    .option('--registry <file>', 'registry file (default .loom/registry.db or $LOOM_REGISTRY)')
    .option('--json', 'print the lineage as JSON')
    .addHelpText(
      'after',
      '\nThe artefact is a path (a file or folder a run wrote) or a run id.\n\nExample:\n  $ loom lineage out/export\n  $ loom lineage out/data/train.jsonl --json\n  $ loom lineage pipeline-eval-20261207T091457-4dfd2a',
    )
    .action((artefact: string, o: { registry?: string; json?: boolean }) => {
      const file = o.registry ?? defaultRegistryPath();
      if (!existsSync(file)) {
        throw new LoomError('INPUT_NOT_FOUND', `no registry at ${file} / 找不到注册表`, {
          file,
          hint: 'run `loom run pipeline.yaml` in the project folder first, or pass --registry',
        });
      }
      const reg = new Registry(file);
      try {
        const l = lineageOf(reg, artefact);
        process.stdout.write(o.json ? `${JSON.stringify(l, null, 2)}\n` : `${renderLineage(l)}\n`);
      } finally {
        reg.close();
      }
    });
}
