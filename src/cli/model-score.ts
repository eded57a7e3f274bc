import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { CausalLM } from '../generate/causal-lm.ts';
import { scoreText, type TextScore } from '../generate/score.ts';
import { LoomTokenizer } from '../tokenizer/tokenizer.ts';

/** `loom model score <dir> --text "…"`: per-token log-probabilities and perplexity (sanity-check a model). */
export function registerModelScore(model: Command): void {
  model
    .command('score <dir>')
    .description('per-token log-probabilities and perplexity of a text under the model')
    .option('-t, --text <text>', 'text to score')
    .option('--no-special', 'do not add the tokenizer special tokens (e.g. BOS)')
    .option('--threads <n>', 'ONNX Runtime threads')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom model score models/tiny --text "Hello, how can I help you today?"\n  $ loom model score models/tiny --text "Hi" --json',
    )
    .action(async (dir: string, opts: { text?: string; special: boolean; threads?: string; json?: boolean }) => {
      if (opts.text === undefined) {
        throw new LoomError('CONFIG_INVALID', 'give the text to score with --text', { field: 'text' });
      }
      const threads = opts.threads === undefined ? undefined : Number(opts.threads);
      if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
        throw new LoomError('CONFIG_INVALID', '--threads must be a positive integer', { field: 'threads' });
      }
      const tok = LoomTokenizer.fromFolder(dir);
      const lm = await CausalLM.load(dir, { threads });
      try {
        const s = await scoreText(lm, tok, opts.text, { addSpecialTokens: opts.special });
        process.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : formatScore(s));
      } finally {
        await lm.close();
      }
    });
}

function formatScore(s: TextScore): string {
  const lines = ['     #      id  logprob  token'];
  s.tokens.forEach((t, i) => {
    const lp = t.logprob === null ? '       -' : t.logprob.toFixed(3).padStart(8);
    lines.push(`${String(i).padStart(6)}  ${String(t.id).padStart(6)}  ${lp}  ${JSON.stringify(t.token)}`);
  });
  lines.push(
    `tokens ${s.tokens.length}, scored ${s.count}, mean logprob ${s.meanLogprob.toFixed(4)}, perplexity ${s.perplexity.toFixed(3)}`,
  );
  return `${lines.join('\n')}\n`;
}
