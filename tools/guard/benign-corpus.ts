/**
 * False positives of the guard's default (non-model) layers on real benign customer-service messages: every
 * BANKING77 train row (en, 10,003 after the CSV's quoted multi-line fields are joined) and every CrossWOZ val user turn
 * (zh, 4,229), as input; the same texts as model output (`checkOutput`) too. Also the shop/business contact subset:
 * the rows that ask for a phone number, address or contact of a shop, restaurant, hotel or bank (the benign class
 * behind the `harm.privacy.*` false positives) — their flag rate should stay 0.
 *
 * CLINC150 train (en, 15,000 in-scope queries) and xSID zh valid (300) are checked as well, as a second, wider net.
 *
 *   npx tsx tools/guard/benign-corpus.ts [/work/shared/datasets]   # one JSON line per corpus/side, then one per flag
 *
 * Only train/val splits are read (the test splits of banking77 and CrossWOZ are reserved for independent evaluation,
 * issue 14). Nothing here tunes a rule: it is the regression count a rule change must not raise.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { createGuard } from '../../src/guard/index.ts';

const shared = process.argv[2] ?? process.env.LOOM_DATASETS ?? '/work/shared/datasets';
const b77 = (
  parse(readFileSync(join(shared, 'banking77_en/train.csv'), 'utf8'), { columns: true }) as { text: string }[]
).map((r) => r.text);
const cw = readFileSync(join(shared, 'crosswoz_zh/user_turn_intents.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { text: string; split: string })
  .filter((r) => r.split === 'val')
  .map((r) => r.text);
const clinc = (
  JSON.parse(readFileSync(join(shared, 'clinc150_en/data_full.json'), 'utf8')) as { train: [string, string][] }
).train.map((r) => r[0]);
const xsid = readFileSync(join(shared, 'xsid_zh_en/zh.valid.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => (JSON.parse(l) as { text: string }).text);

// Business contact questions: a contact word (phone, number, address, hotline, 电话, 地址, 客服) asked about.
const CONTACT = /phone|number|address|contact|hotline|call|电话|地址|联系|客服|热线|号码/i;

const guard = createGuard({});
const report: Record<string, unknown>[] = [];
const flags: Record<string, unknown>[] = [];
for (const [corpus, lang, texts] of [
  ['banking77 train', 'en', b77],
  ['crosswoz val user turns', 'zh', cw],
  ['clinc150 train', 'en', clinc],
  ['xsid zh valid', 'zh', xsid],
] as const) {
  for (const side of ['input', 'output'] as const) {
    const byRule: Record<string, number> = {};
    let flagged = 0;
    let contact = 0;
    let contactFlagged = 0;
    for (const t of texts) {
      const v = side === 'input' ? guard.checkInput(t) : guard.checkOutput(t);
      const isContact = CONTACT.test(t);
      if (isContact) contact++;
      if (v.labels.length === 0) continue;
      flagged++;
      if (isContact) contactFlagged++;
      const rule = v.evidence[0] ? `${v.evidence[0].layer}:${v.evidence[0].rule}` : '?';
      byRule[rule] = (byRule[rule] ?? 0) + 1;
      flags.push({ corpus, side, rule, labels: v.labels, text: t });
    }
    report.push({
      corpus,
      lang,
      side,
      rows: texts.length,
      flagged,
      fpr: Math.round((flagged / texts.length) * 1e5) / 1e5,
      contact_rows: contact,
      contact_flagged: contactFlagged,
      by_rule: byRule,
    });
  }
}
for (const r of report) console.log(JSON.stringify(r));
for (const f of flags) console.log(JSON.stringify({ flag: f }));
