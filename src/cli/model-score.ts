import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { scoreText, type TextScore } from '../generate/score.ts';
import { num } from './chat.ts';
import { openLocalModel } from './local-model.ts';

/**
 * `loom model score <dir> --text "…"`: per-token log-probabilities and perplexity (sanity-check a model). A text
 * longer than the window is scored with a sliding window; a 1-token text reports perplexity n/a.
 */
export function registerModelScore(model: Command): void {
  model
    .command('score <dir>')
    .description('per-token log-probabilities and perplexity of a text under the model')
    .option('-t, --text <text>', 'text to score')
    .option('--no-special', 'do not add the tokenizer special tokens (e.g. BOS)')
    .option('--window <n>', "tokens per forward pass; longer texts use a sliding window (default: the model's context)")
    .option('--stride <n>', 'tokens between sliding-window starts, below the window (default: half the window)')
    .option('--threads <n>', 'ONNX Runtime threads')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nA text longer than the window is scored with a sliding window (each token conditioned on up to window-1\ntokens before it, as in the Hugging Face perplexity guide). A 1-token text has nothing to predict: its\nperplexity is n/a (null in JSON); with a tokenizer that adds BOS the first token is scored from BOS.\n\nExample:\n  $ loom model score models/tiny --text "Hello, how can I help you today?"\n  $ loom model score models/tiny --text "Hi" --json\n  $ loom model score models/tiny --text "$(cat report.txt)" --window 512 --stride 256',
    )
    .action(async (dir: string, opts: ScoreOptions) => {
      if (opts.text === undefined) {
        throw new LoomError('CONFIG_INVALID', 'give the text to score with --text', { field: 'text' });
      }
      const model = await openLocalModel(dir, { threads: positive(opts.threads, 'threads') });
      try {
        const s = await scoreText(model.lm, model.tokenizer, opts.text, {
          addSpecialTokens: opts.special,
          window: positive(opts.window, 'window'),
          stride: positive(opts.stride, 'stride'),
        });
        process.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : formatScore(s));
      } finally {
        await model.close();
      }
    });
}

interface ScoreOptions {
  text?: string;
  special: boolean;
  window?: string;
  stride?: string;
  threads?: string;
  json?: boolean;
}

const positive = (v: string | undefined, field: string) => num(v, field, (n) => Number.isInteger(n) && n > 0);

function formatScore(s: TextScore): string {
  const lines = ['     #      id  logprob  token'];
  s.tokens.forEach((t, i) => {
    const lp = t.logprob === null ? '       -' : t.logprob.toFixed(3).padStart(8);
    lines.push(`${String(i).padStart(6)}  ${String(t.id).padStart(6)}  ${lp}  ${JSON.stringify(t.token)}`);
  });
  const windows = s.windows > 1 ? ` (sliding window ${s.window}, stride ${s.stride}, ${s.windows} windows)` : '';
  lines.push(
    s.meanLogprob === null || s.perplexity === null
      ? `tokens ${s.tokens.length}, scored 0, perplexity n/a: nothing to predict after the first token`
      : `tokens ${s.tokens.length}, scored ${s.count}, mean logprob ${s.meanLogprob.toFixed(4)}, perplexity ${s.perplexity.toFixed(3)}${windows}`,
  );
  return `${lines.join('\n')}\n`;
}
