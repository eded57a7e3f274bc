import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { RetrievalModel } from '../eval/baselines/retrieval.ts';
import { type ComparisonRow, compareRuns, renderComparison } from '../eval/report/compare.ts';
import { fmt } from '../eval/report/html.ts';
import type { RunResult } from '../eval/suite/results.ts';
import { runSuite } from '../eval/suite/runner.ts';
import { serveChatModel } from '../serve/openai-server.ts';

/**
 * Quickstart `eval` stage: examples/customer-service/eval.yaml with its paths pointed at this quickstart's outputs.
 * The pretrained model is the base (the model the LoRA was trained on), the LoRA fine-tune is scored next to it,
 * and the "hosted model" is the retrieval stand-in served on a free local port; then every model is compared with
 * the base (paired bootstrap).
 */
const SUITE = fileURLToPath(new URL('../../examples/customer-service/eval.yaml', import.meta.url));

export interface EvalStageResult {
  stage: string;
  summary: string;
  outputs: string[];
  result?: RunResult;
  /** Every other model vs the base, per task and metric. */
  comparison?: ComparisonRow[];
}

const TABLE_METRICS: Record<string, string[]> = {
  generation: ['chrf', 'bleu', 'rougeL'],
  conversation: ['goal_success', 'pass_rate', 'policy_violations'],
};

export async function evalStage(outDir: string, opts: { overrides?: string[] } = {}): Promise<EvalStageResult> {
  const data = resolve(outDir, 'data');
  const base = resolve(outDir, 'train', 'pretrain', 'model');
  const adapter = resolve(outDir, 'train', 'lora', 'adapter');
  if (![join(data, 'test.jsonl'), join(base, 'config.json'), join(adapter, 'adapter_config.json')].every(existsSync)) {
    return { stage: 'eval', summary: 'skipped: needs the data and train stages’ outputs', outputs: [] };
  }
  const standin = RetrievalModel.fromMessagesFile(join(data, 'train.jsonl'));
  const server = await serveChatModel(standin, { modelName: 'faq-retrieval' });
  try {
    const q = JSON.stringify;
    const { result, dir } = await runSuite(SUITE, {
      overrides: [
        `models.0.path=${q(base)}`,
        `models.1.path=${q(base)}`,
        `models.1.adapter=${q(adapter)}`,
        `models.2.base_url=${q(server.url)}`,
        `tasks.0.dataset=${q(join(data, 'test.jsonl'))}`,
        `out_dir=${q(resolve(outDir, 'eval'))}`,
        `cache=${q(resolve(outDir, 'eval-cache.sqlite'))}`,
        ...(opts.overrides ?? []),
      ],
    });
    const lines: string[] = [];
    for (const t of result.tasks) {
      const keys = TABLE_METRICS[t.kind] ?? Object.keys(t.summary).slice(0, 3);
      const cell = (k: string): string => {
        const s = t.summary[k];
        if (!s) return `${k} –`;
        return `${k} ${fmt(s.score)}${s.ci ? ` [${fmt(s.ci[0])}, ${fmt(s.ci[1])}]` : ''}`;
      };
      lines.push(
        `${t.task.padEnd(12)} ${t.model.padEnd(8)} n=${String(t.conversations?.length ?? t.examples.length).padEnd(3)} ${keys.map(cell).join('  ')}`,
      );
    }
    const rows = compareRuns(result, undefined, { baseline: 'base' });
    const cmp = join(dir, 'compare.html');
    writeFileAtomic(
      cmp,
      renderComparison(rows, `LoRA fine-tune and stand-in vs the pretrained base (${result.runId})`),
    );
    writeJsonAtomic(join(dir, 'compare.json'), rows);
    for (const r of rows.filter((r) => ['chrf', 'bleu', 'rougeL', 'goal_success'].includes(r.metric))) {
      const who = r.system.split('/')[0];
      lines.push(
        `${who} vs base: ${r.task} ${r.metric} ${fmt(r.baselineScore)} → ${fmt(r.systemScore)} (${r.delta >= 0 ? '+' : ''}${fmt(r.delta)}, p = ${r.pValue === undefined ? '–' : fmt(r.pValue, 3)})`,
      );
    }
    return {
      stage: 'eval',
      summary: lines.join('\n'),
      outputs: [join(dir, 'report.html'), cmp, join(dir, 'results.json')],
      result,
      comparison: rows,
    };
  } finally {
    await server.app.close();
  }
}
