import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { type TrainConfig, trainConfigSchema } from '../config/train.ts';
import { LoomError } from '../core/errors.ts';
import { readHfConfig } from '../models/config.ts';
import { Registry } from '../registry/db.ts';
import { type Distributed, type EmitTarget, emitJob } from '../train/emit.ts';
import { formatOverfit } from '../train/metrics.ts';
import { formatTiming } from '../train/preflight.ts';
import { maskedExamples, renderSpans } from '../train/show-tokens.ts';
import { runTraining } from '../train/trainer.ts';

interface TrainFlags {
  resume?: boolean;
  dryRun?: boolean;
  merge?: boolean;
  showTokens?: string;
  emit?: string;
  out?: string;
  nodes: string;
  gpus: string;
  distributed?: string;
  json?: boolean;
  registry?: boolean;
  threads?: string;
}

const EMIT_TARGETS = ['llamafactory', 'axolotl', 'trl'];

async function showTokens(c: TrainConfig, baseDir: string, n: number): Promise<void> {
  const ansi = process.stdout.isTTY === true;
  for (const ex of await maskedExamples(c, baseDir, n)) {
    if (c.stage === 'pt' || c.stage === 'cls') {
      const label = ex.label !== undefined ? ` label=${ex.label}` : '';
      process.stdout.write(`--- ${ex.file}:${ex.line}${label}\n${ex.spans[0]?.text ?? ''}\n`);
      continue;
    }
    const cut = ex.overCutoff
      ? ` (over cutoff_len ${c.cutoff_len}: ${ex.overCutoff === 'cut' ? 'cut at the end, the tail is not trained' : 'dropped, the prompt alone fills it'})`
      : '';
    process.stdout.write(`--- ${ex.file}:${ex.line}: ${ex.tokens} tokens, ${ex.trained} trained${cut}\n`);
    process.stdout.write(`${renderSpans(ex.spans, ansi)}\n`);
  }
  if (c.stage === 'sft' && !ansi)
    process.stdout.write('(trained tokens are inside [[ ]]; ^w marks a loss_weight other than 1)\n');
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'fine-tune (lora, qlora, full, freeze, prefix), pretrain, or train a classifier (stage: cls); or emit the job for another trainer',
    )
    .argument('<config>', 'train YAML (LLaMA-Factory-like keys; see docs/train.md)')
    .argument('[overrides...]', 'key=value overrides, e.g. learning_rate=2e-4 max_steps=50')
    .option('--resume', 'continue from the latest checkpoint in output_dir (bit-identical to an uninterrupted run)')
    .option(
      '--dry-run',
      'print the resolved config and the pre-flight (parameters, memory, measured step time), then stop',
    )
    .option('--merge', 'LoRA: also write a merged HF model folder (output_dir/merged)')
    .option('--show-tokens <n>', 'print the first N examples with trained tokens highlighted, then stop')
    .option('--emit <target>', `write the job for ${EMIT_TARGETS.join(' | ')} instead of training here`)
    .option('--out <dir>', 'output folder for --emit (default output_dir/emit-<target>)')
    .option('--nodes <n>', 'nodes for --emit', '1')
    .option('--gpus <n>', 'GPUs per node for --emit', '1')
    .option('--distributed <kind>', 'multi-GPU sharding for --emit: zero2 | zero3 | fsdp')
    .option('--threads <n>', 'ONNX Runtime threads')
    .option('--no-registry', 'do not record the run in the SQLite registry (.loom/registry.db)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Example:
  $ loom train examples/customer-service/train-lora.yaml max_steps=30
  $ loom train examples/customer-service/train-lora.yaml --show-tokens 2
  $ loom train examples/customer-service/train-lora.yaml --emit llamafactory --nodes 2 --gpus 8
  $ loom train examples/intent-cls/train-banking77.yaml        # stage: cls, then loom eval cls`,
    )
    .action(async (configPath: string, overrides: string[], flags: TrainFlags) => {
      const { config: c, baseDir } = loadConfig(configPath, trainConfigSchema, overrides);
      if (flags.showTokens !== undefined) {
        await showTokens(c, baseDir, Number(flags.showTokens));
        return;
      }
      if (flags.emit !== undefined) {
        if (!EMIT_TARGETS.includes(flags.emit)) {
          throw new LoomError(
            'CONFIG_INVALID',
            `--emit ${flags.emit}: unknown target (allowed: ${EMIT_TARGETS.join(', ')})`,
          );
        }
        if (flags.distributed && !['zero2', 'zero3', 'fsdp'].includes(flags.distributed)) {
          throw new LoomError('CONFIG_INVALID', `--distributed ${flags.distributed}: allowed zero2, zero3, fsdp`);
        }
        let modelType: string | undefined;
        let numLayers: number | undefined;
        try {
          const mc = readHfConfig(resolve(baseDir, c.model, 'config.json'));
          modelType = mc.architecture;
          numLayers = mc.numLayers;
        } catch {
          // a hub id or missing folder: the target trainer resolves it
        }
        const outDir = resolve(flags.out ?? resolve(baseDir, c.output_dir, `emit-${flags.emit}`));
        const r = emitJob(c, {
          target: flags.emit as EmitTarget,
          outDir,
          nodes: Number(flags.nodes),
          gpus: Number(flags.gpus),
          distributed: flags.distributed as Distributed | undefined,
          baseDir,
          modelType,
          numLayers,
        });
        if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        else {
          process.stdout.write(`wrote ${r.files.length} files to ${outDir}\n`);
          for (const w of r.warnings) process.stdout.write(`warning: ${w}\n`);
          process.stdout.write(`launch:\n  cd ${outDir}\n  ${r.launch.join('\n  ')}\n`);
        }
        return;
      }
      if (flags.dryRun) process.stdout.write(`resolved config:\n${JSON.stringify(c, null, 2)}\n`);
      const ac = new AbortController();
      const onSigint = (): void => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write('\ninterrupt: saving a checkpoint (Ctrl-C again to quit at once)\n');
        ac.abort();
      };
      process.on('SIGINT', onSigint);
      const registry = flags.registry === false || flags.dryRun ? undefined : new Registry();
      try {
        const r = await runTraining({
          config: c,
          baseDir,
          resume: flags.resume,
          dryRun: flags.dryRun,
          merge: flags.merge,
          signal: ac.signal,
          registry,
          threads: flags.threads ? Number(flags.threads) : undefined,
        });
        const { params: _p, ...rest } = r;
        if (flags.json) process.stdout.write(`${JSON.stringify(rest, null, 2)}\n`);
        else if (!flags.dryRun) {
          process.stdout.write(
            `${r.interrupted ? 'interrupted' : 'done'}: ${r.steps} steps, loss ${r.firstLoss?.toFixed(4)} → ${r.lastLoss?.toFixed(4)}` +
              `${r.bestEvalLoss !== undefined ? `, best eval loss ${r.bestEvalLoss.toFixed(4)}` : ''}${r.earlyStopped ? ' (early stop)' : ''}\n`,
          );
          if (r.timing && !r.interrupted) process.stdout.write(`${formatTiming(r.timing)}\n`);
          if (r.overfitting) process.stdout.write(`warning: ${formatOverfit(r.overfitting)}\n`);
          for (const o of r.outputs) process.stdout.write(`  → ${o}\n`);
          if (r.interrupted) process.stdout.write(`resume with: loom train ${configPath} --resume\n`);
        }
        if (r.interrupted) process.exitCode = 130;
      } finally {
        process.off('SIGINT', onSigint);
        registry?.close();
      }
    });
}
