import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { generateIds } from '../generate/generate.ts';
import { num } from './chat.ts';
import { openLocalModel } from './local-model.ts';

interface GenerateOptions {
  prompt?: string;
  maxNewTokens: string;
  temperature: string;
  seed?: string;
  special: boolean;
  threads?: string;
  json?: boolean;
}

/**
 * `loom generate <model> --prompt TEXT`: a raw completion (no chat template), so users and tools can compare runtimes
 * token by token. `--json` prints exactly `{"prompt_tokens": [...], "tokens": [...], "text": "..."}`: the prompt's
 * ids (the tokenizer's special tokens added unless --no-special), the generated ids (EOS not included) and their
 * decoded text.
 */
export function registerGenerate(program: Command): void {
  program
    .command('generate <model>')
    .description('raw completion of a prompt (no chat template): text, or prompt and generated token ids as JSON')
    .option('-p, --prompt <text>', 'the text to continue')
    .option('--max-new-tokens <n>', 'most tokens to generate', '64')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', '0')
    .option('--seed <n>', 'sampling seed (for --temperature above 0)')
    .option('--no-special', 'do not add the tokenizer special tokens (e.g. BOS) to the prompt')
    .option('--threads <n>', 'ONNX Runtime threads')
    .option('--json', 'print {"prompt_tokens": [...], "tokens": [...], "text": "..."}')
    .addHelpText(
      'after',
      '\n<model> is a model folder, a `loom train` run folder or one of its checkpoints (checked against its manifest).\nGeneration stops at an end-of-sequence token (not included) or after --max-new-tokens.\n\nExample:\n  $ loom generate models/tiny --prompt "Once upon a time" --max-new-tokens 20\n  $ loom generate runs/lora/checkpoints/step-000040 --prompt "Hello" --temperature 0 --json',
    )
    .action(async (dir: string, opts: GenerateOptions) => {
      if (opts.prompt === undefined) {
        throw new LoomError('CONFIG_INVALID', 'give the text to continue with --prompt', { field: 'prompt' });
      }
      const maxNewTokens = num(opts.maxNewTokens, 'max-new-tokens', (n) => Number.isInteger(n) && n >= 0);
      const temperature = num(opts.temperature, 'temperature', (n) => n >= 0);
      const seed = num(opts.seed, 'seed', Number.isInteger);
      const threads = num(opts.threads, 'threads', (n) => Number.isInteger(n) && n > 0);
      const model = await openLocalModel(dir, { threads });
      try {
        const tok = model.tokenizer;
        const promptTokens = await tok.encode(opts.prompt, { addSpecialTokens: opts.special });
        const eosIds = [...new Set([...tok.eosIds, ...model.lm.config.eosTokenId])];
        const [r] = await generateIds(model.lm, [promptTokens], { maxNewTokens, temperature, seed, eosIds });
        const tokens = r!.ids;
        const text = await tok.decode(tokens);
        process.stdout.write(
          opts.json ? `${JSON.stringify({ prompt_tokens: promptTokens, tokens, text })}\n` : `${text}\n`,
        );
      } finally {
        await model.close();
      }
    });
}
