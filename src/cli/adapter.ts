import type { Command } from 'commander';
import { Registry } from '../registry/db.ts';
import { importAdapter } from '../train/adapter-import.ts';

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
