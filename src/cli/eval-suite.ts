import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { RetrievalModel } from '../eval/baselines/retrieval.ts';
import { recordEvalRun } from '../eval/records.ts';
import { compareRuns, formatComparison, loadRun, renderComparison } from '../eval/report/compare.ts';
import { fmt } from '../eval/report/html.ts';
import { UNREACHABLE } from '../eval/suite/results.ts';
import { runSuite } from '../eval/suite/runner.ts';
import { type PriceProvenance, priceLabel } from '../providers/presets.ts';
import { Registry } from '../registry/db.ts';
import { serveChatModel } from '../serve/openai-server.ts';

/** `loom eval run | compare | standin`, registered on the `eval` command next to `eval metric`. */
/** " (verified price, as of … / 价格已核实…)": which prices a cost line rests on. */
function priceNote(p: PriceProvenance | undefined): string {
  const l = priceLabel(p);
  return l ? ` (${l.en} / ${l.zh})` : '';
}

export function registerEvalSuite(ev: Command): void {
  ev.command('run')
    .description(
      'run an eval suite: models × prompts × tasks (generation, classification, multiple choice, conversations)',
    )
    .argument('<suite>', 'suite YAML')
    .argument('[overrides...]', 'key=value overrides, e.g. generation.max_new_tokens=32 tasks.0.limit=10')
    .option('--out <dir>', 'output folder (default: the suite’s out_dir)')
    .option('--parallel <n>', 'items in flight per model', (v) => Number.parseInt(v, 10), 4)
    .option('--no-registry', 'do not record the run in the SQLite registry')
    .option('--json', 'print the results JSON instead of a table')
    .addHelpText(
      'after',
      `
Example:
  $ loom eval standin --data out/quickstart/data/train.jsonl --port 8765 &
  $ loom eval run examples/customer-service/eval.yaml tasks.0.limit=20`,
    )
    .action(
      async (
        suite: string,
        overrides: string[],
        o: { out?: string; parallel: number; registry: boolean; json?: boolean },
      ) => {
        const { result, dir } = await runSuite(suite, { overrides, outDir: o.out, parallel: o.parallel });
        if (o.registry) {
          const reg = new Registry();
          try {
            recordEvalRun(reg, result, dir);
          } finally {
            reg.close();
          }
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          return;
        }
        for (const t of result.tasks) {
          if (t.unreachable) {
            process.stdout.write(`${t.task}\t${t.model}\t${t.prompt}\t${UNREACHABLE}\n`);
            continue;
          }
          const s = Object.entries(t.summary)
            .filter(([k]) => !k.startsWith('f1['))
            .map(([k, v]) => `${k}=${fmt(v.score, 3)}${v.ci ? ` [${fmt(v.ci[0], 3)}, ${fmt(v.ci[1], 3)}]` : ''}`)
            .join('  ');
          process.stdout.write(
            `${t.task}\t${t.model}\t${t.prompt}\t${s}${t.errors.length ? `\t(${t.errors.length} errors)` : ''}\n`,
          );
        }
        // Say why items failed, not only how many: the first few errors per task, the rest are in the report.
        for (const t of result.tasks) {
          for (const e of t.errors.slice(0, 3)) process.stderr.write(`${t.task} ${t.model}: ${e}\n`);
          if (t.errors.length > 3) process.stderr.write(`${t.task} ${t.model}: … ${t.errors.length - 3} more\n`);
        }
        // Cost beside latency per model: the prompt-only (hosted) vs fine-tuned (local) trade-off in one place.
        for (const [id, u] of Object.entries(result.usage)) {
          if (!u.requests) continue;
          const cost =
            u.costPer1kRequestsUsd !== undefined
              ? `$${u.costPer1kRequestsUsd.toFixed(4)} per 1,000 requests${priceNote(u.price)}`
              : 'no price';
          process.stdout.write(
            `model ${id}\t${u.requests} requests\t${cost}\tmean latency ${fmt(u.meanLatencyMs ?? Number.NaN, 1)} ms\n`,
          );
        }
        process.stdout.write(`results: ${join(dir, 'results.json')}\nreport:  ${join(dir, 'report.html')}\n`);
        for (const m of result.models.filter((x) => x.unreachable))
          process.stderr.write(`${m.id}: endpoint unreachable (its tasks were not run): ${m.unreachable}\n`);
        if (result.errors.length || result.tasks.some((t) => t.errors.length)) process.exitCode = 1;
      },
    );

  ev.command('compare')
    .description('compare two eval runs (or models within one run) with deltas and paired significance')
    .argument('<runA>', 'baseline run folder (or its results.json; an out_dir folder means its newest run)')
    .argument('[runB]', 'candidate run folder; omit to compare models inside runA against --baseline')
    .option(
      '--baseline <model>',
      'baseline inside one run: a model id (other models, same prompt) or model/prompt@version (every other system, prompt versions included); default: the first model',
    )
    .option('--out <file>', 'HTML file to write (default: compare.html in the candidate run folder)')
    .option('--json', 'print rows as JSON')
    .addHelpText(
      'after',
      `
Example:
  $ loom eval compare out/eval/cs-20261128T1200 --baseline base
  $ loom eval compare out/customer-service/eval --baseline base     # the newest run in that out_dir
  $ loom eval compare out/eval/cs-20261128T1200 --baseline lora/support@1
  $ loom eval compare out/eval/run-before out/eval/run-after`,
    )
    .action((runA: string, runB: string | undefined, o: { baseline?: string; out?: string; json?: boolean }) => {
      runA = newestRun(runA);
      if (runB) runB = newestRun(runB);
      const a = loadRun(runA);
      const b = runB ? loadRun(runB) : undefined;
      const rows = compareRuns(a, b, { baseline: o.baseline });
      const out = resolve(o.out ?? join(runB ?? runA, 'compare.html'));
      writeFileAtomic(out, renderComparison(rows, `Compare ${a.runId}${b ? ` → ${b.runId}` : ''}`));
      writeJsonAtomic(out.replace(/\.html$/, '.json'), rows);
      process.stdout.write(
        o.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatComparison(rows)}\nreport: ${out}\n`,
      );
    });

  ev.command('standin')
    .description('serve a retrieval baseline over a messages JSONL as an OpenAI-compatible endpoint (offline stand-in)')
    .requiredOption('--data <file>', 'messages JSONL whose user→assistant pairs are the answers')
    .option('--port <n>', 'port on 127.0.0.1', (v) => Number.parseInt(v, 10), 8765)
    .option('--threshold <x>', 'minimum similarity to answer (else decline)', Number.parseFloat, 0.35)
    .addHelpText('after', '\nExample:\n  $ loom eval standin --data out/quickstart/data/train.jsonl --port 8765')
    .action(async (o: { data: string; port: number; threshold: number }) => {
      const model = RetrievalModel.fromMessagesFile(o.data, { threshold: o.threshold });
      const { url } = await serveChatModel(model, { port: o.port, modelName: 'faq-retrieval' });
      process.stderr.write(`retrieval stand-in listening at ${url} (Ctrl-C to stop)\n`);
    });
}

/**
 * A suite's out_dir holds one folder per run (`<name>-<UTC time>`); given that folder instead of a run, the
 * newest run in it is meant (by results.json mtime), so scripts need not know the timestamp.
 */
function newestRun(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory() || existsSync(join(path, 'results.json'))) return path;
  const runs = readdirSync(path)
    .map((d) => join(path, d, 'results.json'))
    .filter((f) => existsSync(f))
    .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs);
  if (runs.length === 0) return path;
  const run = dirname(runs[0]!);
  process.stderr.write(`using the newest run in ${path}: ${run}\n`);
  return run;
}
