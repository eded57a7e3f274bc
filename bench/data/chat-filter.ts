/**
 * Drop rate of the `chat` filter preset on real, openly licensed chat data, per language and per rule: ordinary
 * utterances and conversations should survive it. Sources (see each SOURCE.md in /work/shared/datasets):
 * English — BANKING77 train+test, CLINC150 (all splits), xSID en valid+test, ABCD sample dialogues;
 * Chinese — CrossWOZ user turns, system turns and whole dialogues (val+test), xSID zh valid+test.
 *
 *   npx tsx bench/data/chat-filter.ts            # JSON line per corpus: rows, dropped, rate, by rule
 *   npx tsx bench/data/chat-filter.ts --sample test/fixtures/data/chat-filter/ordinary.jsonl
 *                                                # (re)writes the seeded sample the filter test reads
 *
 * A row counts in the language its source is in; the language rule is part of the preset, so an utterance that
 * langid cannot place (e.g. "ok") and that the preset drops for it counts as dropped.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateText, resolveFiltersConfig } from '../../src/data/filters/index.ts';

const DATA =
  process.env.LOOM_DATASETS ?? join(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/datasets');

const read = (p: string) => readFileSync(join(DATA, p), 'utf8');
const jsonl = (p: string) =>
  read(p)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

/** The first column of a CSV (banking77: `text,category`); quoted fields may hold commas, quotes and newlines. */
function csvTexts(p: string): string[] {
  const src = read(p);
  const out: string[] = [];
  let i = src.indexOf('\n') + 1;
  while (i < src.length) {
    let text = '';
    if (src[i] === '"') {
      let j = i + 1;
      for (;;) {
        const q = src.indexOf('"', j);
        if (src[q + 1] === '"') {
          text += src.slice(j, q + 1);
          j = q + 2;
        } else {
          text += src.slice(j, q);
          i = q + 1;
          break;
        }
      }
    } else {
      const c = src.indexOf(',', i);
      text = src.slice(i, c);
      i = c;
    }
    const nl = src.indexOf('\n', i);
    i = nl < 0 ? src.length : nl + 1;
    out.push(text);
  }
  return out;
}

export function corpora(): { name: string; lang: 'en' | 'zh'; texts: string[] }[] {
  const clinc = JSON.parse(read('clinc150_en/data_full.json')) as Record<string, [string, string][]>;
  const abcd = JSON.parse(read('abcd_sample_en/abcd_sample.json')) as { original: [string, string][] }[];
  const woz = [...jsonl('crosswoz_zh/dialogues_val.jsonl'), ...jsonl('crosswoz_zh/dialogues_test.jsonl')] as {
    messages: { role: string; content: string }[];
  }[];
  return [
    {
      name: 'banking77',
      lang: 'en',
      texts: [...csvTexts('banking77_en/train.csv'), ...csvTexts('banking77_en/test.csv')],
    },
    { name: 'clinc150', lang: 'en', texts: Object.values(clinc).flatMap((s) => s.map((r) => r[0])) },
    {
      name: 'xsid_en',
      lang: 'en',
      texts: [...jsonl('xsid_zh_en/en.valid.jsonl'), ...jsonl('xsid_zh_en/en.test.jsonl')].map((r) => r.text),
    },
    { name: 'abcd_turns', lang: 'en', texts: abcd.flatMap((d) => d.original.map((t) => t[1])) },
    { name: 'abcd_dialogues', lang: 'en', texts: abcd.map((d) => d.original.map((t) => t[1]).join('\n')) },
    {
      name: 'crosswoz_user_turns',
      lang: 'zh',
      texts: woz.flatMap((d) => d.messages.filter((m) => m.role === 'usr').map((m) => m.content)),
    },
    {
      name: 'crosswoz_sys_turns',
      lang: 'zh',
      texts: woz.flatMap((d) => d.messages.filter((m) => m.role === 'sys').map((m) => m.content)),
    },
    { name: 'crosswoz_dialogues', lang: 'zh', texts: woz.map((d) => d.messages.map((m) => m.content).join('\n')) },
    {
      name: 'xsid_zh',
      lang: 'zh',
      texts: [...jsonl('xsid_zh_en/zh.valid.jsonl'), ...jsonl('xsid_zh_en/zh.test.jsonl')].map((r) => r.text),
    },
  ];
}

export function dropRate(texts: string[]): { rows: number; dropped: number; rate: number; by: Record<string, number> } {
  const cfg = resolveFiltersConfig({ preset: 'chat' });
  const by: Record<string, number> = {};
  let dropped = 0;
  for (const t of texts) {
    const ev = evaluateText(t, cfg, false);
    if (ev.drop) {
      dropped++;
      by[ev.drop.reason] = (by[ev.drop.reason] ?? 0) + 1;
    }
  }
  return { rows: texts.length, dropped, rate: Number((dropped / texts.length).toFixed(5)), by };
}

/** Rows per corpus in the committed sample (test/data/chat-filter.test.ts); seeded, so reruns write the same. */
const SAMPLE: Record<string, number> = {
  banking77: 400,
  clinc150: 300,
  xsid_en: 100,
  abcd_turns: 40,
  crosswoz_user_turns: 400,
  crosswoz_sys_turns: 300,
  xsid_zh: 100,
};

function sample(texts: string[], k: number, seed: number): string[] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const idx = texts.map((_, i) => i);
  for (let i = 0; i < Math.min(k, idx.length); i++) {
    const j = i + Math.floor(rnd() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx
    .slice(0, k)
    .sort((a, b) => a - b)
    .map((i) => texts[i]!);
}

const at = process.argv.indexOf('--sample');
if (at > 0) {
  const lines: string[] = [];
  for (const c of corpora()) {
    const k = SAMPLE[c.name];
    if (!k) continue;
    for (const text of sample(c.texts, k, 42)) lines.push(JSON.stringify({ text, lang: c.lang, corpus: c.name }));
  }
  writeFileSync(process.argv[at + 1]!, `${lines.join('\n')}\n`);
  console.log(`wrote ${lines.length} rows to ${process.argv[at + 1]}`);
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const totals = { en: { rows: 0, dropped: 0 }, zh: { rows: 0, dropped: 0 } };
  for (const c of corpora()) {
    const r = dropRate(c.texts);
    totals[c.lang].rows += r.rows;
    totals[c.lang].dropped += r.dropped;
    console.log(JSON.stringify({ corpus: c.name, lang: c.lang, ...r }));
  }
  for (const [lang, t] of Object.entries(totals))
    console.log(JSON.stringify({ corpus: 'all', lang, ...t, rate: Number((t.dropped / t.rows).toFixed(5)) }));
}
