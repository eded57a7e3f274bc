/**
 * Precision and recall of each PII detector on a hand-labelled set (test/fixtures/pii/labelled.jsonl): verbatim
 * CrossWOZ (zh travel dialogues) and ABCD (en customer service) utterances plus written helpdesk lines, each
 * labelled by hand with the PII spans a person would mask (400-numbers and business hotlines are labelled as not
 * personal). Matching is lenient: a found span counts when it overlaps an unused labelled span of the same type.
 * The floors sit at or just under the measured figures (docs/data.md), so a regression in any class fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createPiiDetector } from '../../src/data/pii.ts';

interface Labelled {
  source: string;
  text: string;
  pii: { type: string; text: string }[];
}

const rows: Labelled[] = readFileSync(new URL('../fixtures/pii/labelled.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as Labelled);

function score(): Map<string, { tp: number; fp: number; fn: number }> {
  const det = createPiiDetector();
  const by = new Map<string, { tp: number; fp: number; fn: number }>();
  const get = (t: string) => {
    let s = by.get(t);
    if (!s) by.set(t, (s = { tp: 0, fp: 0, fn: 0 }));
    return s;
  };
  for (const r of rows) {
    // Gold spans as offsets: each labelled text is located after the previous one of the same text.
    const gold = r.pii.map((p, k) => {
      let from = 0;
      for (let j = 0; j < k; j++) if (r.pii[j]!.text === p.text) from = r.text.indexOf(p.text, from) + 1;
      const start = r.text.indexOf(p.text, from);
      assert.ok(start >= 0, `label "${p.text}" not in "${r.text}"`);
      return { type: p.type, start, end: start + p.text.length, used: false };
    });
    for (const f of det.find(r.text)) {
      const g = gold.find((x) => !x.used && x.type === f.type && f.start < x.end && f.end > x.start);
      if (g) {
        g.used = true;
        get(f.type).tp++;
      } else get(f.type).fp++;
    }
    for (const g of gold) if (!g.used) get(g.type).fn++;
  }
  return by;
}

// Measured on this set (see docs/data.md): floors per class.
const FLOORS: Record<string, { p: number; r: number }> = {
  cn_mobile: { p: 1, r: 1 },
  cn_landline: { p: 1, r: 1 },
  qq: { p: 1, r: 1 },
  cn_address: { p: 0.9, r: 0.9 },
  person_name: { p: 0.9, r: 0.75 },
  email: { p: 1, r: 1 },
};

describe('PII detectors on the labelled set', () => {
  it('has enough labelled spans per class to mean something', () => {
    const n = new Map<string, number>();
    for (const r of rows) for (const p of r.pii) n.set(p.type, (n.get(p.type) ?? 0) + 1);
    assert.ok((n.get('cn_landline') ?? 0) >= 15);
    assert.ok((n.get('cn_address') ?? 0) >= 15);
    assert.ok((n.get('person_name') ?? 0) >= 10);
    assert.ok((n.get('qq') ?? 0) >= 3);
    assert.ok(rows.filter((r) => r.pii.length === 0).length >= 30, 'negatives');
  });

  it('meets the measured precision/recall per class', () => {
    const by = score();
    const lines: string[] = [];
    for (const [type, f] of Object.entries(FLOORS)) {
      const s = by.get(type) ?? { tp: 0, fp: 0, fn: 0 };
      const p = s.tp + s.fp === 0 ? 1 : s.tp / (s.tp + s.fp);
      const r = s.tp + s.fn === 0 ? 1 : s.tp / (s.tp + s.fn);
      lines.push(`${type}: P ${p.toFixed(3)} R ${r.toFixed(3)} (tp ${s.tp} fp ${s.fp} fn ${s.fn})`);
      assert.ok(p >= f.p && r >= f.r, `${type}: P ${p.toFixed(3)} R ${r.toFixed(3)} below ${f.p}/${f.r}`);
    }
    // Every detected type must be a labelled one (a stray cn_id/bank_card hit on these lines is a false positive).
    for (const [type, s] of by) if (!(type in FLOORS)) assert.equal(s.fp, 0, `${type} false positives`);
    console.log(lines.join('\n'));
  });
});
