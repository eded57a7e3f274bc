import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataRow, RejectRecord } from '../../src/core/types.ts';
import { cnIdValid, createPiiDetector, luhnValid, piiStep, rejectMasker } from '../../src/data/pii.ts';
import { runStep } from '../../src/data/step-harness.ts';

const row = (id: string, fields: Partial<DataRow>): DataRow => ({
  id,
  meta: {},
  source: { file: 'f', line: 3 },
  ...fields,
});

/** GB 11643-1999: check = "10X98765432"[Σ a_i·W_i mod 11], W_i = 2^(17−i) mod 11 (ISO 7064 MOD 11-2). */
function idCheck(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * (2 ** (17 - i) % 11);
  return '10X98765432'[sum % 11]!;
}

/** Luhn check digit for a payload: double every second digit from the right of payload+check. */
function luhnCheck(payload: string): string {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) {
    let d = Number(payload[payload.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

const ALL = ['email', 'ipv4', 'ipv6', 'url', 'cn_mobile', 'cn_id', 'bank_card', 'phone_intl'] as const;

describe('PII checksums', () => {
  it('resident ID: valid checksums (computed here by the standard formula) match, wrong ones do not', () => {
    for (const base of ['11010519491231002', '44030419900307571', '32010619851122123', '51010820000229456']) {
      const id = base + idCheck(base);
      assert.ok(cnIdValid(id), id);
      const wrong = base + (idCheck(base) === '0' ? '1' : '0');
      assert.ok(!cnIdValid(wrong), wrong);
    }
    // The published example 11010519491231002X (X = remainder 2).
    assert.equal(idCheck('11010519491231002'), 'X');
    // Impossible dates fail even with a correct check character.
    const badDate = '11010519490230123';
    assert.ok(!cnIdValid(badDate + idCheck(badDate)));
  });

  it('Luhn: computed check digits pass, off-by-one fails', () => {
    assert.ok(luhnValid('4111111111111111'));
    for (const p of ['622202123456789012', '453201511283036', '510510510510510']) {
      const good = p + luhnCheck(p);
      assert.ok(luhnValid(good), good);
      assert.ok(!luhnValid(p + ((Number(luhnCheck(p)) + 1) % 10)));
    }
  });
});

describe('PII detection and masking', () => {
  const det = createPiiDetector({ types: ALL });
  const id = `11010519491231002${idCheck('11010519491231002')}`;
  const card = `622202123456789012${luhnCheck('622202123456789012')}`;

  it('masks each type with its token', () => {
    const cases: [string, string][] = [
      ['联系 zhang.san+cs@example.com.cn 谢谢', '联系 <EMAIL> 谢谢'],
      ['手机13812345678，或 138-1234-5678，或 +86 138 1234 5678', '手机<PHONE>，或 <PHONE>，或 <PHONE>'],
      ['(+86)15912345678 / 008618612345678', '<PHONE> / <PHONE>'],
      [`身份证号${id}。`, '身份证号<ID>。'],
      [`卡号 ${card} 和 4111 1111 1111 1111`, '卡号 <CARD> 和 <CARD>'],
      ['server 8.8.8.8, gw 192.168.1.1.', 'server <IP>, gw <IP>.'],
      ['v6 2001:db8:85a3::8a2e:370:7334 and fe80::1:2:3', 'v6 <IP> and <IP>'],
      ['call +1 415 555 2671 or +44 20 7946 0958', 'call <PHONE> or <PHONE>'],
      ['see https://shop.example.com/faq?id=3. or www.example.org', 'see <URL>. or <URL>'],
    ];
    for (const [input, want] of cases) assert.equal(det.mask(input).text, want, input);
  });

  it('does not match tricky negatives', () => {
    const wrongId = `11010519491231002${idCheck('11010519491231002') === '0' ? '1' : '0'}`;
    const orderLuhn = `62220212345678901${luhnCheck('62220212345678901')}`;
    const negatives = [
      '订单号 13812345678 已发货',
      `订单号：${orderLuhn}`,
      `order #${orderLuhn}`,
      '运单号 SF1234567890123',
      'tracking number 1Z999AA10123456784',
      `身份证 ${wrongId}`,
      '时间戳 1701234567890 和 20231128123456',
      'timestamp 2023-11-28T12:30:45Z, 12:30:45',
      '价格 ¥13,800.00，优惠 ￥1380.5，共 12345678 元',
      'version 1.2.3.4 and v10.0.0.1',
      '订单 2023112812345678 下单时间 2023/11/28',
      '数量 12345678901234 件',
      'IP 256.1.1.1 is invalid, 1.2.3 too short',
      'ratio 3:2:1 and std::vector<int>',
      'call 12812345678',
      'score +5 and +12 points',
      '4111 1111 1111 1112',
    ];
    for (const t of negatives) assert.deepEqual(det.find(t), [], t);
  });

  it('urls are off by default; public_ip_only skips private ranges', () => {
    const dflt = createPiiDetector();
    assert.equal(dflt.mask('see https://example.com now').text, 'see https://example.com now');
    const pub = createPiiDetector({ types: ['ipv4'], publicIpOnly: true });
    assert.equal(
      pub.mask('10.0.0.1 192.168.0.1 172.16.5.4 127.0.0.1 8.8.4.4').text,
      '10.0.0.1 192.168.0.1 172.16.5.4 127.0.0.1 <IP>',
    );
  });

  it('custom tokens', () => {
    const d = createPiiDetector({ types: ['email'], tokens: { email: '[邮箱]' } });
    assert.equal(d.mask('a@b.co').text, '[邮箱]');
  });
});

describe('PII step', () => {
  it('masks text and messages, counts per type, logs the masked row without PII in the reason', async () => {
    const rows = [
      row('a', { text: '我的手机是13812345678，邮箱 a.b@example.com' }),
      row('b', { messages: [{ role: 'user', content: 'my ip is 8.8.8.8' }] }),
      row('c', { text: 'nothing here 2023' }),
    ];
    const { kept: out, rejects, counts } = await runStep(piiStep({}), rows);
    assert.equal(out[0]!.text, '我的手机是<PHONE>，邮箱 <EMAIL>');
    assert.equal(out[1]!.messages![0]!.content, 'my ip is <IP>');
    assert.equal(out[2], rows[2]);
    assert.deepEqual(counts, { 'pii.cn_mobile': 1, 'pii.email': 1, 'pii.rows': 2, 'pii.ipv4': 1 });
    assert.deepEqual(
      rejects.map((r) => [r.action, r.reason, r.source.line]),
      [
        ['changed', 'pii: cn_mobile,email', 3],
        ['changed', 'pii: ipv4', 3],
      ],
    );
    const logged = JSON.stringify(rejects);
    assert.ok(!logged.includes('13812345678') && !logged.includes('a.b@example.com') && !logged.includes('8.8.8.8'));
    assert.deepEqual(rejects[0]!.detail, { types: { cn_mobile: 1, email: 1 }, spans: 2 });
  });

  it('scans meta string values unless scan_meta is off', async () => {
    const r = row('m', { text: 'hello', meta: { contact: { phone: '13812345678' }, n: 3 } });
    const on = await runStep(piiStep({}), [r]);
    assert.deepEqual(on.kept[0]!.meta, { contact: { phone: '<PHONE>' }, n: 3 });
    assert.equal(on.kept[0]!.text, 'hello');
    const off = await runStep(piiStep({ scan_meta: false }), [r]);
    assert.equal(off.kept[0], r);
  });

  it('drop action and max_spans drop rows; rejects_keep_original keeps the original', async () => {
    const rows = [row('a', { text: 'mail a@b.com' }), row('b', { text: 'clean' })];
    const drop = await runStep(piiStep({ action: 'drop' }), rows);
    assert.deepEqual(
      drop.kept.map((r) => r.id),
      ['b'],
    );
    assert.equal(drop.rejects[0]!.reason, 'pii.found: email');
    assert.equal((drop.rejects[0]!.row as DataRow).text, 'mail <EMAIL>');
    const many = await runStep(piiStep({ max_spans: 1 }), [row('m', { text: 'a@b.com c@d.com' })]);
    assert.equal(many.kept.length, 0);
    assert.equal(many.rejects[0]!.reason, 'pii.too_many_spans');
    const orig = await runStep(piiStep({ rejects_keep_original: true }), rows);
    assert.equal((orig.rejects[0]!.row as DataRow).text, 'mail a@b.com');
    const keep = await runStep(piiStep({ rejects_pii: 'keep' }), rows);
    assert.equal((keep.rejects[0]!.row as DataRow).text, 'mail a@b.com');
  });

  it('rejectMasker masks the rejects of other steps: raw lines, rows, details; not sources or ids', () => {
    const m = rejectMasker({ tokens: { cn_mobile: '<PHONE>' } })!;
    // 11010519491231002X: GB 11643 example ID (check character X); 4111 1111 1111 1111: Luhn-valid test card.
    const raw: RejectRecord = {
      step: 'ingest',
      reason: 'invalid JSON',
      action: 'dropped',
      source: { file: 'a@b.com.jsonl', line: 2 },
      row: '{"text": "call 13812345678, id 11010519491231002X"',
    };
    assert.equal(m(raw).row, '{"text": "call <PHONE>, id <ID>"');
    assert.deepEqual(m(raw).source, raw.source);
    const filtered: RejectRecord = {
      step: 'filter',
      reason: 'length.too_short_chars',
      action: 'dropped',
      source: { file: 'f', line: 1 },
      row: row('x@y.com:1', {
        messages: [{ role: 'user', content: 'card 4111 1111 1111 1111' }],
        meta: { c: 'x@y.com' },
      }),
      detail: { removed: ['mail x@y.com'] },
      duplicate_of: 'k',
    };
    const out = m(filtered);
    const r = out.row as DataRow;
    assert.equal(r.id, 'x@y.com:1');
    assert.equal(r.messages![0]!.content, 'card <CARD>');
    assert.equal(r.meta.c, '<EMAIL>');
    assert.deepEqual(out.detail, { removed: ['mail <EMAIL>'] });
    assert.equal(out.duplicate_of, 'k');
    // The input record is not modified, and the pii step's own rejects pass through.
    assert.equal((filtered.row as DataRow).messages![0]!.content, 'card 4111 1111 1111 1111');
    const own: RejectRecord = { ...raw, step: 'pii' };
    assert.equal(m(own), own);
    assert.equal(rejectMasker({ rejects_pii: 'keep' }), undefined);
    assert.equal(rejectMasker(false), undefined);
    assert.equal(rejectMasker({ enabled: false }), undefined);
  });
});
