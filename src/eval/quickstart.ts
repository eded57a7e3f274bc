import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic.ts';
import { serveChatModel } from '../serve/openai-server.ts';
import { RetrievalModel } from './baselines/retrieval.ts';
import { compareRuns, renderComparison } from './report/compare.ts';
import { fmt } from './report/html.ts';
import { runSuite } from './suite/runner.ts';

/**
 * Quickstart `eval` stage: examples/customer-service/eval.yaml with its paths pointed at this quickstart's outputs.
 * The "hosted model" is the retrieval stand-in served on a free local port, so the base model, the LoRA fine-tune
 * and an OpenAI-compatible endpoint are scored side by side, then the fine-tune is compared with its base.
 */
export async function evalStage(outDir: string): Promise<{ stage: string; summary: string; outputs: string[] }> {
  const data = resolve(outDir, 'data');
  const base = resolve(outDir, 'train', 'base');
  const adapter = resolve(outDir, 'train', 'lora', 'adapter');
  if (![join(data, 'test.jsonl'), join(base, 'config.json'), join(adapter, 'adapter_config.json')].every(existsSync)) {
    return { stage: 'eval', summary: 'skipped: needs the data and train stages’ outputs', outputs: [] };
  }
  const standin = RetrievalModel.fromMessagesFile(join(data, 'train.jsonl'));
  const server = await serveChatModel(standin, { modelName: 'faq-retrieval' });
  try {
    const { result, dir } = await runSuite(resolve('examples/customer-service/eval.yaml'), {
      overrides: [
        `models.0.path=${base}`,
        `models.1.path=${base}`,
        `models.1.adapter=${adapter}`,
        `models.2.base_url=${server.url}`,
        `tasks.0.dataset=${join(data, 'test.jsonl')}`,
        `out_dir=${resolve(outDir, 'eval')}`,
        `cache=${resolve(outDir, 'eval-cache.sqlite')}`,
      ],
    });
    const lines: string[] = [];
    for (const t of result.tasks) {
      const keys =
        t.kind === 'conversation' ? ['goal_success', 'pass_rate', 'policy_violations'] : ['bleu', 'chrf', 'rougeL'];
      lines.push(
        `${t.task.padEnd(12)} ${t.model.padEnd(8)} ${keys.map((k) => `${k} ${fmt(t.summary[k]?.score)}`).join('  ')}`,
      );
    }
    const rows = compareRuns(result, undefined, { baseline: 'base' }).filter((r) => r.system.startsWith('lora/'));
    const cmp = join(dir, 'compare.html');
    writeFileAtomic(cmp, renderComparison(rows, `LoRA fine-tune vs base (${result.runId})`));
    for (const r of rows.filter((r) => ['chrf', 'goal_success'].includes(r.metric))) {
      lines.push(
        `lora vs base: ${r.task} ${r.metric} ${r.delta >= 0 ? '+' : ''}${fmt(r.delta)} (p = ${fmt(r.pValue, 3)})`,
      );
    }
    return {
      stage: 'eval',
      summary: lines.join('\n'),
      outputs: [join(dir, 'report.html'), cmp, join(dir, 'results.json')],
    };
  } finally {
    await server.app.close();
  }
}
