/**
 * Real zh/en text for the dedup benchmarks, read from /work/shared/datasets (or $LOOM_DATASETS):
 * crosswoz_zh (user turns), chinese_poetry_zh (songci/yuanqu poems), banking77_en, clinc150_en (queries),
 * tinyshakespeare_en (speeches). Each loader returns plain strings; `documents` concatenates short texts of one
 * source into documents of about `chars` characters (web-document sized, as the MinHash throughput figures of
 * the references are for documents, not single queries).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';

export const DATASETS = process.env.LOOM_DATASETS ?? '/work/shared/datasets';

function read(...p: string[]): string {
  const f = join(DATASETS, ...p);
  if (!existsSync(f)) throw new Error(`benchmark data missing: ${f} (set LOOM_DATASETS)`);
  return readFileSync(f, 'utf8');
}

export function crosswozZh(): string[] {
  return read('crosswoz_zh', 'user_turn_intents.jsonl')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { text: string }).text);
}

export function poetryZh(file = 'songci.txt'): string[] {
  return read('chinese_poetry_zh', file)
    .split(/\n\s*\n/)
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
}

export function banking77En(): string[] {
  const rows = parseCsv(read('banking77_en', 'train.csv'), { columns: true }) as { text: string }[];
  return rows.map((r) => r.text);
}

export function clinc150En(): string[] {
  const data = JSON.parse(read('clinc150_en', 'data_full.json')) as Record<string, [string, string][]>;
  return Object.values(data).flatMap((xs) => xs.map((x) => x[0]));
}

export function shakespeareEn(): string[] {
  return read('tinyshakespeare_en', 'input.txt')
    .split(/\n\s*\n/)
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
}

/** Joins consecutive texts into documents of at least `chars` characters. */
export function documents(texts: readonly string[], chars: number): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let len = 0;
  for (const t of texts) {
    cur.push(t);
    len += t.length + 1;
    if (len >= chars) {
      out.push(cur.join('\n'));
      cur = [];
      len = 0;
    }
  }
  if (cur.length) out.push(cur.join('\n'));
  return out;
}
