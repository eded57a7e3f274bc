import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { evalClassifier } from '../eval/cls/index.ts';

/** `loom eval cls <model> <data.jsonl>`: precision / recall / F1 of a sequence classifier (stage: cls). */
export function registerEvalCls(ev: Command): void {
  ev.command('cls')
    .description('score a sequence-classification model (loom train stage: cls) on {"text","label"} JSONL')
    .argument('<model>', 'classification model folder, e.g. runs/intent/model')
    .argument('<data>', 'JSONL with {"text", "label"} rows')
    .option('--json', 'print one JSON object: accuracy, per-class and averaged precision/recall/f1, confusion')
    .option('--cutoff <n>', 'tokens kept per text (default 256)', (v) => intArg('--cutoff', v))
    .option('--batch-size <n>', 'texts per forward pass (default 16)', (v) => intArg('--batch-size', v))
    .option('--errors <n>', 'misclassified rows to print', (v) => intArg('--errors', v), 10)
    .addHelpText(
      'after',
      `
Example:
  $ loom train intent.yaml            # stage: cls, output_dir: runs/intent
  $ loom eval cls runs/intent/model data/intent-dev.jsonl
  $ loom eval cls runs/intent/model data/intent-dev.jsonl --json`,
    )
    .action(
      async (
        model: string,
        data: string,
        o: { json?: boolean; cutoff?: number; batchSize?: number; errors: number },
      ) => {
        const r = await evalClassifier(model, data, { cutoff: o.cutoff, batchSize: o.batchSize });
        const rep = r.report;
        const round = (x: number) => Math.round(x * 10000) / 10000;
        if (o.json) {
          const m = (x: { precision: number; recall: number; f1: number }) => ({
            precision: round(x.precision),
            recall: round(x.recall),
            f1: round(x.f1),
          });
          const out = {
            model: r.model,
            data: r.data,
            n: rep.n,
            accuracy: round(rep.accuracy),
            labels: Object.fromEntries(rep.perClass.map((c) => [c.label, { ...m(c), support: c.support }])),
            macro: m(rep.macro),
            weighted: m(rep.weighted),
            confusion: rep.confusion,
            ms_per_text: round(r.msPerText),
          };
          process.stdout.write(`${JSON.stringify(out)}\n`);
          return;
        }
        const w = Math.max(12, ...rep.labels.map((l) => [...l].length + 2));
        const pad = (x: string | number) => String(x).padStart(10);
        const lines = [
          `${r.model} on ${r.data}: n=${rep.n}  accuracy / 准确率 ${(rep.accuracy * 100).toFixed(2)}%`,
          '',
          `${'label / 标签'.padEnd(w)}${pad('precision')}${pad('recall')}${pad('f1')}${pad('support')}`,
        ];
        for (const c of rep.perClass)
          lines.push(
            `${c.label.padEnd(w)}${pad(c.precision.toFixed(4))}${pad(c.recall.toFixed(4))}${pad(c.f1.toFixed(4))}${pad(c.support)}`,
          );
        for (const [name, a] of [
          ['macro avg', rep.macro],
          ['weighted avg', rep.weighted],
        ] as const)
          lines.push(
            `${name.padEnd(w)}${pad(a.precision.toFixed(4))}${pad(a.recall.toFixed(4))}${pad(a.f1.toFixed(4))}${pad(rep.n)}`,
          );
        lines.push('', `${r.msPerText.toFixed(2)} ms per text (batched) / 每条耗时`);
        if (r.errors.length > 0 && o.errors > 0) {
          lines.push('', `errors / 错误样例 (${r.errors.length}):`);
          for (const e of r.errors.slice(0, o.errors))
            lines.push(`  line ${e.line}: gold=${e.gold} pred=${e.pred} (p=${e.p.toFixed(2)})  ${e.text.slice(0, 70)}`);
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      },
    );
}

function intArg(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    throw new LoomError('OVERRIDE_INVALID', `${flag} needs a positive integer, got '${v}'`, { field: flag });
  }
  return n;
}
