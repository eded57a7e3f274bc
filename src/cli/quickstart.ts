import type { Command } from 'commander';
import { dataStage } from '../data/quickstart.ts';
import { exportStage } from '../export/quickstart.ts';
import { trainStage } from '../train/quickstart.ts';
import { evalStage } from './quickstart-eval.ts';
import { serveStage } from './quickstart-serve.ts';

export interface StageResult {
  stage: string;
  summary: string;
  outputs: string[];
}

export type Stage = (outDir: string) => Promise<StageResult>;

/** Stages join the quickstart in lifecycle order as they are built. */
export const quickstartStages: { name: string; run: Stage }[] = [
  // data goes first: it writes the train/validation split that train reads
  { name: 'data', run: dataStage },
  { name: 'train', run: trainStage },
  { name: 'eval', run: evalStage },
  { name: 'export', run: exportStage },
  { name: 'serve', run: serveStage },
];

/** Wall time and this process's CPU time (ONNX Runtime's threads included) since a start point. */
function timing(t0: number, c0: NodeJS.CpuUsage): string {
  const c = process.cpuUsage(c0);
  return `${((Date.now() - t0) / 1000).toFixed(1)} s, CPU ${((c.user + c.system) / 1e6).toFixed(1)} s`;
}

export function registerQuickstart(program: Command): void {
  program
    .command('quickstart')
    .description('run the customer-service example through every stage that exists and print what each produced')
    .option('-o, --out <dir>', 'output folder', 'out/quickstart')
    .addHelpText('after', '\nExample:\n  $ npx loom quickstart --out /tmp/qs')
    .action(async (opts: { out: string }) => {
      const start = Date.now();
      const cpuStart = process.cpuUsage();
      for (const s of quickstartStages) {
        const t0 = Date.now();
        const c0 = process.cpuUsage();
        const r = await s.run(opts.out);
        process.stdout.write(`\n== ${r.stage} (${timing(t0, c0)})\n${r.summary}\n`);
        for (const o of r.outputs) process.stdout.write(`  → ${o}\n`);
      }
      process.stdout.write(`\n== done (${timing(start, cpuStart)})\n`);
    });
}
