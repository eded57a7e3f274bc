// BANKING77 train.csv → {"text","label"} JSONL for `loom train` (stage: cls): train.jsonl and a seeded 10 % dev.jsonl
// held out of the TRAIN split. The test split is left alone (reserved for independent evaluation).
//   node examples/intent-cls/banking77.mjs [/work/shared/datasets/banking77_en] [out/intent-cls]
// Source: github.com/PolyAI-LDN/task-specific-datasets @57ec275, CC BY 4.0, Casanueva et al. 2020,
// "Efficient Intent Detection with Dual Sentence Encoders".
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const src = process.argv[2] ?? '/work/shared/datasets/banking77_en';
const out = process.argv[3] ?? 'out/intent-cls';

/** Minimal RFC 4180 reader: quoted fields may hold commas and doubled quotes. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

const [header, ...rows] = parseCsv(readFileSync(join(src, 'train.csv'), 'utf8'));
if (header.join(',') !== 'text,category') throw new Error(`unexpected header ${header.join(',')}`);
// Seeded shuffle (mulberry32, seed 77) so the dev split is the same on every machine.
let s = 77;
const rand = () => {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const order = rows.map((_, i) => i);
for (let i = order.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
const nDev = Math.round(rows.length * 0.1);
const line = (i) => JSON.stringify({ text: rows[i][0], label: rows[i][1] });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'dev.jsonl'), `${order.slice(0, nDev).map(line).join('\n')}\n`);
writeFileSync(join(out, 'train.jsonl'), `${order.slice(nDev).map(line).join('\n')}\n`);
process.stdout.write(`${rows.length - nDev} train, ${nDev} dev rows → ${out}\n`);
