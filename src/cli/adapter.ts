import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { readHfConfig } from '../models/config.ts';
import { Registry } from '../registry/db.ts';
import { readPeftAdapter } from '../train/peft.ts';
import { modelFingerprint } from '../train/trainer.ts';

/** `loom adapter import <peft-dir>`: validate a PEFT adapter (e.g. from an emitted LLaMA-Factory/TRL job) and register it. */
export function importAdapter(
  dir: string,
  baseOverride?: string,
  registry?: Registry,
): { id: string; type: string; tensors: number; base?: string } {
  const abs = resolve(dir);
  const cfgPath = join(abs, 'adapter_config.json');
  if (!existsSync(cfgPath)) throw new LoomError('INPUT_NOT_FOUND', `no adapter_config.json in ${dir}`, { file: dir });
  const raw = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const base =
    baseOverride ?? (typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : undefined);
  const baseDir = base && existsSync(join(base, 'config.json')) ? resolve(base) : undefined;
  const adapter = readPeftAdapter(abs, baseDir ? readHfConfig(join(baseDir, 'config.json')) : undefined);
  const h = createHash('sha256').update(readFileSync(join(abs, 'adapter_model.safetensors')));
  const id = `adapter-${h.digest('hex').slice(0, 12)}`;
  registry?.upsertRun({
    id,
    kind: 'adapter',
    status: 'imported',
    outputDir: abs,
    baseModel: base,
    baseModelHash: baseDir ? modelFingerprint(baseDir) : undefined,
    config: adapter.config,
    createdAt: new Date().toISOString(),
  });
  return { id, type: adapter.type, tensors: adapter.tensors.length, base };
}

export function registerAdapter(program: Command): void {
  const cmd = program
    .command('adapter')
    .description('PEFT adapters: bring adapters trained elsewhere into the registry');
  cmd.addHelpText('after', '\nExample:\n  $ loom adapter import saves/loom-job --base models/smollm2-135m');
  cmd
    .command('import')
    .description('validate a PEFT adapter folder (LoRA or prefix tuning) against its base model and register it')
    .argument('<peft-dir>', 'folder with adapter_config.json and adapter_model.safetensors')
    .option('--base <model-dir>', 'base model folder (default: base_model_name_or_path from adapter_config.json)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ loom adapter import outputs/loom-job --base models/tiny')
    .action((dir: string, opts: { base?: string; json?: boolean }) => {
      const registry = new Registry();
      try {
        const r = importAdapter(dir, opts.base, registry);
        if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else {
          process.stdout.write(
            `registered ${r.id}: ${r.type} adapter, ${r.tensors} tensors${r.base ? `, base ${r.base}` : ' (base not checked: give --base)'}\n`,
          );
        }
      } finally {
        registry.close();
      }
    });
}
