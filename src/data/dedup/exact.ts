/**
 * Exact dedup: `exactDedupStep(cfg)` keeps the first row of every group whose normalised text is identical and
 * drops the rest, each reject naming the kept row in `duplicate_of`. One pass, one Map entry per distinct text
 * (53-bit hash → kept id, ~100 B per distinct row).
 *
 * Normalisation (`exactKey`): lowercase (option `lowercase`), whitespace runs collapsed and trimmed; with
 * `ignore_punctuation` all whitespace, punctuation, symbols and control characters are removed instead, so
 * "Hi, there!" and "hi there" are duplicates. The text is `rowText(row)` (message contents joined by newlines).
 */
import { type ExactDedupConfig, exactDedupConfig } from '../../config/data-dedup.ts';
import type { DataRow } from '../../core/types.ts';
import { rowText, type Step, type StepContext } from '../step.ts';
import { hash53 } from './hash.ts';

const PUNCT_SPACE = /[\p{P}\p{S}\p{Z}\p{C}\s]+/gu;
const SPACE = /\s+/g;

export function exactKey(text: string, cfg: Pick<ExactDedupConfig, 'lowercase' | 'ignore_punctuation'>): string {
  let t = cfg.lowercase ? text.toLowerCase() : text;
  t = cfg.ignore_punctuation ? t.replace(PUNCT_SPACE, '') : t.replace(SPACE, ' ').trim();
  return t;
}

export function exactDedupStep(input: Partial<ExactDedupConfig> = {}): Step {
  const cfg = exactDedupConfig.parse(input);
  return {
    name: 'exact_dedup',
    async *run(rows: AsyncIterable<DataRow>, ctx: StepContext): AsyncIterable<DataRow> {
      const seen = new Map<number, string>();
      for await (const row of rows) {
        const key = hash53(exactKey(rowText(row), cfg));
        const kept = seen.get(key);
        if (kept === undefined) {
          seen.set(key, row.id);
          yield row;
          continue;
        }
        ctx.count('exact_dedup.dropped');
        ctx.reject({
          step: 'exact_dedup',
          reason: 'exact_duplicate',
          action: 'dropped',
          source: row.source,
          row,
          duplicate_of: kept,
        });
      }
      ctx.count('exact_dedup.distinct', seen.size);
    },
  };
}
