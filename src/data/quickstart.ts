import { resolve } from 'node:path';
import { runDataPipeline } from './pipeline.ts';

/**
 * Quickstart `data` stage: examples/customer-service/data.yaml (the messy bilingual raw exports) into
 * `<out>/data`: messages JSONL train/validation/test, rejects.jsonl, report.json/html, dataset_info.json.
 */
export async function dataStage(outDir: string): Promise<{ stage: string; summary: string; outputs: string[] }> {
  const r = await runDataPipeline(resolve('examples/customer-service/data.yaml'), {
    outDir: resolve(outDir, 'data'),
    quiet: true,
  });
  const c = r.counts;
  const splits = Object.entries(c.splits)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const summary = [
    `${c.input} raw records (zh/en FAQ exports incl. a GBK CSV, a help-center JSON export, live-chat logs) → ${c.output} clean chats (${splits})`,
    `${c.dropped} dropped (malformed ${c.malformed}, duplicates, junk, broken conversations), ${c.changed} changed (normalised, PII masked)${r.status === 'up-to-date' ? ' [up to date]' : ''}`,
  ].join('\n');
  return { stage: 'data', summary, outputs: Object.values(r.outputs) };
}
