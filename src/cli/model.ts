import type { Command } from 'commander';
import { applyOverrides } from '../config/load.ts';
import { LoomError } from '../core/errors.ts';
import { PRESETS, parameterCount, presetConfig, presetNames } from '../models/config.ts';
import { createModelFolder, type ModelInfo, modelInfo, type SaveDType } from '../models/folder.ts';
import { TINY_VOCAB_SIZE } from '../tokenizer/tiny.ts';
import { LoomTokenizer } from '../tokenizer/tokenizer.ts';

/**
 * `loom model …`: new, info, presets. Other model verbs (score) attach themselves to the command this returns:
 * `registerModel(program)` gives back the `model` Command.
 */
export function registerModel(program: Command): Command {
  const model = program
    .command('model')
    .description('create and inspect model folders (HF layout: config.json + safetensors + tokenizer)')
    .addHelpText('after', '\nExample:\n  $ loom model new models/tiny --preset tiny\n  $ loom model info models/tiny');

  model
    .command('new <dir>')
    .description(
      'create a randomly initialised model folder of a preset shape (shipped tiny tokenizer, or --tokenizer)',
    )
    .option('-p, --preset <name>', `shape preset (${presetNames().join(', ')})`, 'tiny')
    .option('-s, --seed <n>', 'random seed', '0')
    .option('--dtype <dtype>', 'stored dtype: float32, float16, bfloat16', 'float32')
    .option('--set <key=value...>', 'override config.json keys, e.g. --set num_hidden_layers=4')
    .option('--tokenizer <dir>', "copy this model folder's tokenizer instead of the shipped 512-id tiny one")
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom model new models/tiny --preset tiny --seed 1\n  $ loom model new models/deeper --preset tiny --set num_hidden_layers=4\n  $ loom model new models/qwen3-random --preset qwen3-0.6b --tokenizer models/Qwen--Qwen3-0.6B',
    )
    .action(
      (
        dir: string,
        opts: { preset: string; seed: string; dtype: string; set?: string[]; tokenizer?: string; json?: boolean },
      ) => {
        if (!['float32', 'float16', 'bfloat16'].includes(opts.dtype)) {
          throw new LoomError('CONFIG_INVALID', `--dtype must be float32, float16 or bfloat16, not ${opts.dtype}`, {
            field: 'dtype',
          });
        }
        const seed = Number(opts.seed);
        if (!Number.isInteger(seed))
          throw new LoomError('CONFIG_INVALID', `--seed must be an integer`, { field: 'seed' });
        const overrides = opts.set ? applyOverrides({}, opts.set) : {};
        const config = presetConfig(opts.preset, overrides);
        const tokVocab = opts.tokenizer ? LoomTokenizer.fromFolder(opts.tokenizer).vocabSize : TINY_VOCAB_SIZE;
        if (config.vocabSize < tokVocab) {
          throw new LoomError(
            'CONFIG_INVALID',
            `vocab_size ${config.vocabSize} is smaller than the tokenizer's ${tokVocab} ids (${opts.tokenizer ?? 'shipped tiny tokenizer'})`,
            { field: 'vocab_size', hint: `use --set vocab_size=${tokVocab} (or more)` },
          );
        }
        const r = createModelFolder(dir, {
          config,
          seed,
          dtype: opts.dtype as SaveDType,
          tokenizerFrom: opts.tokenizer,
        });
        const n = parameterCount(r.config).total;
        if (opts.json)
          process.stdout.write(`${JSON.stringify({ dir, preset: opts.preset, parameters: n, files: r.files })}\n`);
        else
          process.stdout.write(
            `created ${dir}: ${opts.preset} (${r.config.architecture}), ${formatCount(n)} parameters\n  ${r.files.join(', ')}\n` +
              `  the weights are random: \`loom chat ${dir}\` runs but replies are noise until the model is trained\n`,
          );
      },
    );

  model
    .command('info <dir>')
    .description('print architecture, parameter counts, stored dtype and a memory estimate')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ loom model info models/tiny --json')
    .action((dir: string, opts: { json?: boolean }) => {
      const info = modelInfo(dir);
      process.stdout.write(opts.json ? `${JSON.stringify(info, null, 2)}\n` : formatInfo(info));
    });

  model
    .command('presets')
    .description('list the shape presets `model new` accepts')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ loom model presets')
    .action((opts: { json?: boolean }) => {
      const rows = presetNames().map((name) => {
        const c = presetConfig(name);
        return { name, architecture: c.architecture, parameters: parameterCount(c).total, config: PRESETS[name] };
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else
        for (const r of rows)
          process.stdout.write(`${r.name.padEnd(16)} ${r.architecture.padEnd(8)} ${formatCount(r.parameters)}\n`);
    });
  return model;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function formatInfo(i: ModelInfo): string {
  const s = i.shape;
  const f = i.features;
  const lines = [
    `${i.dir}: ${i.hfClass} (${i.architecture})`,
    `  shape       vocab ${s.vocabSize}, hidden ${s.hiddenSize}, intermediate ${s.intermediateSize}, layers ${s.numLayers}, heads ${s.numHeads} (kv ${s.numKvHeads}), head_dim ${s.headDim}, context ${s.maxPositionEmbeddings}`,
    `  features    qkv bias ${f.qkvBias ? 'yes' : 'no'}, q/k norm ${f.qkNorm ? 'yes' : 'no'}, tied embeddings ${f.tiedEmbeddings ? 'yes' : 'no'}, rope theta ${i.ropeTheta}${f.ropeScaling ? `, rope scaling ${f.ropeScaling}` : ''}${f.slidingWindow ? `, sliding window ${f.slidingWindow}${i.architecture === 'mistral' ? '' : ' (not applied by Loom)'}` : ''}`,
    `  parameters  ${formatCount(i.parameters.total)} total (${i.parameters.total}), embedding ${formatCount(i.parameters.embedding)}, non-embedding ${formatCount(i.parameters.nonEmbedding)}, per layer ${formatCount(i.parameters.perLayer)}`,
    `  stored      ${Object.entries(i.storage.dtypes)
      .map(([d, n]) => `${d} x${n}`)
      .join(', ')}, ${formatBytes(i.storage.bytes)} in ${i.storage.files.join(', ')}`,
    `  memory      weights ${formatBytes(i.memory.weightsBytesFp32)} fp32 / ${formatBytes(i.memory.weightsBytesFp16)} fp16; KV cache ${formatBytes(i.memory.kvBytesPerTokenFp32)}/token fp32, ${formatBytes(i.memory.kvCacheBytesFp32)} for ${i.memory.contextLength} tokens`,
    `  tokenizer   ${i.tokenizer ? 'tokenizer.json' : 'missing'}`,
  ];
  return `${lines.join('\n')}\n`;
}
