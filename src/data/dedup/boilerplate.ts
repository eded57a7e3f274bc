/**
 * Line-level boilerplate removal: `boilerplateStep(cfg)` (config: boilerplateConfig).
 *
 * Pass 1 spills the rows and counts, for every line (trimmed, whitespace collapsed, lowercased by default, at
 * least `min_chars` long), in how many different rows it occurs (a line counts once per row). Pass 2 removes the
 * lines that occur in ≥ `min_docs` rows ("Sent from my iPhone", "感谢您的咨询，祝您生活愉快") from every text
 * field (text, message contents, prompt/chosen/rejected), and logs each changed row as action 'changed' with the
 * removed lines. A field made only of boilerplate lines is left as it is: emptying it would break the row, and
 * whole-field repeats are the exact/near dedup's business. Memory: one Map entry per distinct line (~80 B).
 */
import { type BoilerplateConfig, boilerplateConfig } from '../../config/data-dedup.ts';
import type { DataRow, Message } from '../../core/types.ts';
import type { Step, StepContext } from '../step.ts';
import { hash53 } from './hash.ts';
import { RowSpill } from './spill.ts';

function lineKey(line: string, cfg: BoilerplateConfig): number | undefined {
  const t = line.replace(/\s+/g, ' ').trim();
  if (t.length < cfg.min_chars) return undefined;
  return hash53(cfg.lowercase ? t.toLowerCase() : t);
}

/** Every text field of a row, in a fixed order. */
function fieldsOf(row: DataRow): string[] {
  const out: string[] = [];
  if (typeof row.text === 'string') out.push(row.text);
  const msgs = (m: Message[] | string | undefined) => {
    if (typeof m === 'string') out.push(m);
    else if (Array.isArray(m)) for (const x of m) out.push(x.content);
  };
  msgs(row.messages);
  msgs(row.prompt);
  msgs(row.chosen);
  msgs(row.rejected);
  return out;
}

export function boilerplateStep(input: Partial<BoilerplateConfig> = {}): Step {
  const cfg = boilerplateConfig.parse(input);
  return {
    name: 'boilerplate',
    async *run(rows: AsyncIterable<DataRow>, ctx: StepContext): AsyncIterable<DataRow> {
      const counts = new Map<number, number>();
      const spill = new RowSpill(ctx.tmpDir, 'boilerplate');
      let ok = false;
      try {
        for await (const row of rows) {
          await spill.write(row);
          const mine = new Set<number>();
          for (const f of fieldsOf(row)) {
            for (const line of f.split('\n')) {
              const k = lineKey(line, cfg);
              if (k !== undefined) mine.add(k);
            }
          }
          for (const k of mine) counts.set(k, (counts.get(k) ?? 0) + 1);
        }
        let boilerplateLines = 0;
        for (const c of counts.values()) if (c >= cfg.min_docs) boilerplateLines++;
        ctx.count('boilerplate.lines', boilerplateLines);

        for await (const row of spill.read()) {
          const removed: string[] = [];
          const strip = (s: string): string => {
            const lines = s.split('\n');
            const isBp = lines.map((l) => {
              const k = lineKey(l, cfg);
              return k !== undefined && (counts.get(k) ?? 0) >= cfg.min_docs;
            });
            if (!isBp.includes(true)) return s;
            const rest = lines.filter((l, i) => !isBp[i] && l.trim() !== '');
            if (rest.length === 0) return s;
            for (let i = 0; i < lines.length; i++) if (isBp[i]) removed.push(lines[i]!.trim());
            return lines
              .filter((_, i) => !isBp[i])
              .join('\n')
              .replace(/^\s*\n+|\n+\s*$/g, '');
          };
          const stripMsgs = <T extends Message[] | string | undefined>(m: T): T => {
            if (typeof m === 'string') return strip(m) as T;
            if (Array.isArray(m)) return m.map((x) => ({ ...x, content: strip(x.content) })) as T;
            return m;
          };
          const next: DataRow = { ...row };
          if (typeof row.text === 'string') next.text = strip(row.text);
          if (row.messages) next.messages = stripMsgs(row.messages);
          if (row.prompt) next.prompt = stripMsgs(row.prompt);
          if (row.chosen !== undefined) next.chosen = stripMsgs(row.chosen);
          if (row.rejected !== undefined) next.rejected = stripMsgs(row.rejected);
          if (removed.length > 0) {
            ctx.count('boilerplate.changed');
            ctx.count('boilerplate.lines_removed', removed.length);
            ctx.reject({
              step: 'boilerplate',
              reason: 'boilerplate_lines',
              action: 'changed',
              source: row.source,
              row,
              detail: { removed },
            });
            yield next;
          } else yield row;
        }
        ok = true;
      } finally {
        if (!ok) await spill.discard();
      }
    },
  };
}
