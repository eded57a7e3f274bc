import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_PII_TYPES, type PiiType } from '../../src/config/data-clean.ts';
import { createPiiDetector } from '../../src/data/pii.ts';

// The PII pre-filters and the anchored address scan (src/data/pii-scan.ts) must not change a single finding: every
// detector, on or off, over the shipped corpora (the guard's dev/benign/attack/classifier sets and the example
// project's raw customer-service data, the hand-labelled PII lines), over long pastes made of them, and over random address-like strings.

function strings(v: unknown, out: string[]): void {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) strings(x, out);
}

function corpus(): string[] {
  const out: string[] = [];
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(jsonl|json|csv)$/.test(name)) files.push(p);
    }
  };
  walk('examples/customer-service/raw');
  walk('test/fixtures/pii');
  for (const name of ['dev.jsonl', 'benign-public.jsonl', 'attacks.jsonl', 'cls-train.jsonl'])
    files.push(join('data/guard', name));
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.jsonl')) {
      // The raw chat logs are messy on purpose (broken lines): a line that is not JSON is a text of its own.
      for (const line of text.split('\n').filter(Boolean)) {
        try {
          strings(JSON.parse(line), out);
        } catch {
          out.push(line);
        }
      }
    } else if (f.endsWith('.json')) strings(JSON.parse(text), out);
    else out.push(...text.split('\n'));
  }
  return out.filter((s) => s.length > 0);
}

const all: PiiType[] = [...DEFAULT_PII_TYPES, 'url'];
const fast = createPiiDetector({ types: all });
const plain = createPiiDetector({ types: all, prefilter: false });
const publicFast = createPiiDetector({ types: all, publicIpOnly: true });
const publicPlain = createPiiDetector({ types: all, publicIpOnly: true, prefilter: false });

test('identical findings with and without the pre-filters on the shipped corpora, every PII type on', () => {
  const texts = corpus();
  assert.ok(texts.length > 5000, `only ${texts.length} texts`);
  let found = 0;
  for (const t of texts) {
    const want = plain.find(t);
    assert.deepEqual(fast.find(t), want, t);
    assert.deepEqual(publicFast.find(t), publicPlain.find(t), t);
    found += want.length;
  }
  // The corpora do hold PII (phone numbers, addresses, names, e-mails), so the comparison is not of empty lists.
  assert.ok(found > 50, `${found} spans`);
});

test('identical findings on long pastes joined from the corpora (many address anchors in one text)', () => {
  const texts = corpus();
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed;
  };
  for (let i = 0; i < 60; i++) {
    const parts: string[] = [];
    let len = 0;
    while (len < 4000) {
      const t = texts[next() % texts.length]!;
      parts.push(t);
      len += t.length;
    }
    const paste = parts.join(i % 2 ? '' : '\n');
    assert.deepEqual(fast.mask(paste), plain.mask(paste));
  }
});

test('the anchored address scan equals the global scan on random address-like strings', () => {
  // Place characters, administrative and road words, house numbers and the building/unit/room words, packed
  // densely so matches start, overlap and end next to each other.
  const pieces = [
    ...'北京上海浦东朝阳南京中山人民解放建国海淀东西长安和平'.split(''),
    '省',
    '自治区',
    '市',
    '区',
    '县',
    '镇',
    '乡',
    '路',
    '街',
    '大街',
    '大道',
    '道',
    '巷',
    '胡同',
    '同',
    '弄',
    '号',
    '12',
    '３',
    '-',
    '号楼',
    '栋',
    '单元',
    '室',
    '5',
    '我',
    '在',
    '，',
    ' ',
    'a',
  ];
  const det = createPiiDetector({ types: ['cn_address'] });
  const ref = createPiiDetector({ types: ['cn_address'], prefilter: false });
  let seed = 11;
  let spans = 0;
  for (let i = 0; i < 3000; i++) {
    let s = '';
    const n = 5 + (i % 80);
    for (let k = 0; k < n; k++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      s += pieces[seed % pieces.length];
    }
    const want = ref.find(s);
    assert.deepEqual(det.find(s), want, s);
    spans += want.length;
  }
  assert.ok(spans > 50, `${spans} address spans`);
});

test('an address on a 大道 without digits is found (the old text-level pre-check skipped it)', () => {
  const spans = createPiiDetector().find('请寄到上海市浦东新区世纪大道');
  assert.deepEqual(
    spans.map((s) => s.type),
    ['cn_address'],
  );
});
