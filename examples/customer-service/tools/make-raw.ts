/**
 * Builds examples/customer-service/raw/ from the hand-written FAQ (faq.ts) and small samples of openly licensed
 * sets in ../shared/datasets. The mess is deliberate and deterministic (fixed seed), so the example shows what
 * the pipeline does with real-world exports: a GBK-encoded CSV, HTML leftovers, full-width characters,
 * zero-width spaces, Traditional Chinese, exact and near duplicates across files, fake PII (phone numbers,
 * e-mails, resident ID numbers with valid checksums, Luhn-valid card numbers), junk rows and broken JSON lines.
 *
 *   npx tsx examples/customer-service/tools/make-raw.ts [/path/to/shared/datasets]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';
import { FAQ, type FaqEntry, SYSTEM_EN, SYSTEM_ZH } from './faq.ts';

const here = dirname(fileURLToPath(import.meta.url));
const RAW = join(here, '..', 'raw');
const SHARED = process.argv[2] ?? join(here, '..', '..', '..', '..', 'shared', 'datasets');

let seed = 20240611;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}
function digits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 10);
  return s;
}

/** GB 11643-1999 check character of a mainland resident ID. */
function idChecksum(first17: string): string {
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let s = 0;
  for (let i = 0; i < 17; i++) s += Number(first17[i]) * w[i]!;
  return '10X98765432'[s % 11]!;
}
function fakeId(): string {
  const region = pick(['110101', '310104', '440305', '330106', '510107']);
  const birth = `19${80 + Math.floor(rand() * 20)}${String(1 + Math.floor(rand() * 12)).padStart(2, '0')}${String(1 + Math.floor(rand() * 28)).padStart(2, '0')}`;
  const body = region + birth + digits(3);
  return body + idChecksum(body);
}
function luhnComplete(prefix: string, len: number): string {
  let body = prefix + digits(len - prefix.length - 1);
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  body += String((10 - (sum % 10)) % 10);
  return body;
}
function fakeMobile(): string {
  return `1${pick(['38', '39', '58', '86', '77'])}${digits(8)}`;
}
function fakeEmail(): string {
  return `${pick(['li.wei', 'zhangmin', 'amy.chen', 'tom_w', 'xiaoyu88'])}${digits(2)}@example.com`;
}

const ZH_CATEGORY: Record<FaqEntry['intent'], string> = {
  order: '订单',
  shipping: '物流',
  return: '退货',
  refund: '退款',
  payment: '支付',
  invoice: '发票',
  account: '账号',
  coupon: '优惠券',
};

function write(rel: string, data: string | Buffer): void {
  const p = join(RAW, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
}

function csvCell(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// 1. The Chinese FAQ as a GBK CSV exported from a help-desk system.
function faqCsv(): void {
  const lines = ['编号,分类,问题,答案,更新时间'];
  let n = 1000;
  const row = (cat: string, q: string, a: string) =>
    lines.push([String(n++), cat, q, a, `2024-0${1 + Math.floor(rand() * 9)}-1${Math.floor(rand() * 9)}`].map(csvCell).join(','));
  for (const e of FAQ) {
    for (const q of e.zh) {
      let a = e.zhA;
      // Help-desk exports keep the editor's HTML and odd spacing.
      if (rand() < 0.2) a = `<p>${a.replace('。', '。<br>')}</p>`;
      if (rand() < 0.15) a = a.replace(/(\d+)/, (d) => String.fromCharCode(...[...d].map((c) => c.charCodeAt(0) + 0xfee0)));
      row(ZH_CATEGORY[e.intent], rand() < 0.1 ? `${q}  ` : q, a);
    }
  }
  // Exact duplicate rows (the same article exported twice) and a near duplicate with changed punctuation.
  row('退款', FAQ[15]!.zh[0]!, FAQ[15]!.zhA);
  row('物流', FAQ[5]!.zh[0]!, FAQ[5]!.zhA);
  row('物流', '下单后多久发货?', FAQ[5]!.zhA.replace('。', '！'));
  // A customer left contact details in the question field.
  row('订单', `我的订单还没到，电话${fakeMobile()}，麻烦尽快处理`, '已为您催促快递，请留意物流更新，如有问题我们会主动联系您。');
  // Junk: test rows, an empty answer, a placeholder.
  row('其他', '测试测试', 'test');
  row('退货', '退货地址是哪里？', '');
  row('其他', '？？？', '暂无');
  // A row with a broken quote (the export tool did not escape it).
  lines.push(`${n++},支付,"付款时提示"银行卡异常"怎么办？,请更换银行卡或联系发卡行确认卡片状态。,2024-03-02`);
  const text = `${lines.join('\r\n')}\r\n`.replace(/–/g, '-');
  const gbk = iconv.encode(text, 'gbk');
  if (iconv.decode(gbk, 'gbk') !== text) throw new Error('FAQ text has characters outside GBK');
  write('faq/faq_zh_export.csv', gbk);
}

// 2. The English FAQ as alpaca JSONL from a CMS, with entities, zero-width spaces and broken lines.
function faqEnJsonl(): void {
  const out: string[] = [];
  for (const e of FAQ) {
    for (const q of e.en) {
      let a = e.enA;
      if (rand() < 0.2) a = a.replace(/"/g, '&quot;').replace(/ & /g, ' &amp; ');
      if (rand() < 0.15) a = `<p>${a}</p>`;
      let qq = q;
      if (rand() < 0.1) qq = q.replace(' ', '\u200b ');
      out.push(JSON.stringify({ instruction: qq, input: '', output: a, category: e.intent }));
    }
  }
  // Near duplicates: case and punctuation changes of existing questions.
  out.push(JSON.stringify({ instruction: 'HOW LONG DOES A REFUND TAKE?', input: '', output: FAQ[15]!.enA, category: 'refund' }));
  out.push(JSON.stringify({ instruction: 'How do I reset my password??', input: '', output: FAQ[28]!.enA, category: 'account' }));
  // Junk and broken records.
  out.push(JSON.stringify({ instruction: 'asdfgh', input: '', output: 'asdfgh', category: 'order' }));
  out.push(JSON.stringify({ instruction: 'Where is my order?', input: '', output: '', category: 'order' }));
  out.push('{"instruction": "Do you ship to Canada?", "input": "", "output": "We currently deliver only within mainland Ch');
  out.push('{"instruction": "Can I pay with PayPal?" "output": "No."}');
  out.push(
    JSON.stringify({
      instruction: `Please call me back at +1 415 555 0134 or email ${fakeEmail()} about my refund`,
      input: '',
      output: 'We will contact you within one business day. You can also follow the refund on the order page.',
      category: 'refund',
    }),
  );
  write('faq/faq_en.jsonl', `${out.join('\n')}\n`);
}

// 3. A help-center export in OpenAI chat format (JSON array) that overlaps the FAQ: exact and near duplicates,
//    full-width text and Traditional Chinese variants.
function helpCenterJson(): void {
  const recs: unknown[] = [];
  for (const i of [0, 5, 11, 15, 19, 23, 27, 30]) {
    const e = FAQ[i]!;
    recs.push({ messages: [{ role: 'user', content: e.zh[0] }, { role: 'assistant', content: e.zhA }] });
    recs.push({ messages: [{ role: 'user', content: e.en[0] }, { role: 'assistant', content: e.enA }] });
  }
  // Full-width copy of an English entry (normalises to an exact duplicate).
  const fw = (s: string) => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
  recs.push({ messages: [{ role: 'user', content: fw(FAQ[7]!.en[0]!) }, { role: 'assistant', content: FAQ[7]!.enA }] });
  // Traditional Chinese variants from the Hong Kong help center.
  recs.push({ messages: [{ role: 'user', content: '請問退款多久能到賬？' }, { role: 'assistant', content: '倉庫簽收退貨後 1-3 個工作日內完成退款。支付寶和微信一般當天到賬，銀行卡需 3-7 個工作日。' }] });
  recs.push({ messages: [{ role: 'user', content: '忘記密碼了怎麼辦？' }, { role: 'assistant', content: '在登錄頁點擊“忘記密碼”，輸入註冊手機號並填寫短信驗證碼後即可設置新密碼。' }] });
  // Near duplicate: one sentence of the answer reworded.
  recs.push({
    messages: [
      { role: 'user', content: '优惠券怎么使用？' },
      { role: 'assistant', content: '结算页会自动选择最优的可用优惠券，您也可以手动更换。每个订单只能使用一张优惠券。' },
    ],
  });
  // Records a linter must flag: no assistant answer, a non-string content, an unknown role.
  recs.push({ messages: [{ role: 'user', content: '发票能邮寄纸质的吗？' }] });
  recs.push({ messages: [{ role: 'user', content: 'Can I get a paper invoice?' }, { role: 'assistant', content: null }] });
  recs.push({ messages: [{ role: 'customer', content: '能开专票吗' }, { role: 'assistant', content: FAQ[25]!.zhA }] });
  write('faq/helpcenter_export.json', `${JSON.stringify(recs, null, 2)}\n`);
}

// 4. Chat logs (sharegpt) from the live-chat tool: greetings, follow-ups, PII, inconsistent system prompts.
function chatLogs(): void {
  const out: string[] = [];
  const systems = [SYSTEM_ZH, SYSTEM_ZH, SYSTEM_ZH, '你是客服。', ''];
  for (let k = 0; k < 44; k++) {
    const zh = k % 2 === 0;
    const e1 = FAQ[(k * 7) % FAQ.length]!;
    const e2 = FAQ[(k * 11 + 3) % FAQ.length]!;
    const conv: { from: string; value: string }[] = [];
    const pii = k % 3 === 0;
    if (zh) {
      let q = pick(e1.zh);
      if (pii) {
        const options = [
          () => `我的手机号是${fakeMobile()}。`,
          () => `我的邮箱是${fakeEmail()}。`,
          () => `实名认证的身份证号是${fakeId()}。`,
          () => `我用的卡号是${luhnComplete('622202', 19)}。`,
        ];
        q += options[(k / 6) % options.length]!();
      }
      conv.push({ from: 'human', value: k % 4 === 0 ? `你好，${q}` : q });
      conv.push({ from: 'gpt', value: e1.zhA });
      if (k % 5 !== 1) {
        conv.push({ from: 'human', value: pick(e2.zh) });
        conv.push({ from: 'gpt', value: e2.zhA });
      }
    } else {
      let q = pick(e1.en);
      if (pii) {
        const options = [
          () => ` My email is ${fakeEmail()}.`,
          () => ` You can reach me at +86 ${fakeMobile()}.`,
          () => ` The card I used is ${luhnComplete('4', 16)}.`,
        ];
        q += options[((k - 3) / 6) % options.length]!();
      }
      conv.push({ from: 'human', value: k % 4 === 1 ? `Hi, ${q}` : q });
      conv.push({ from: 'gpt', value: e1.enA });
      if (k % 5 !== 1) {
        conv.push({ from: 'human', value: pick(e2.en) });
        conv.push({ from: 'gpt', value: e2.enA });
      }
    }
    const sys = zh ? pick(systems) : pick([SYSTEM_EN, SYSTEM_EN, '']);
    out.push(JSON.stringify(sys ? { conversations: conv, system: sys } : { conversations: conv }));
  }
  // The same conversation logged twice (exact duplicate line).
  out.push(out[4]!);
  // Bad conversations: two user turns in a row, ends with the user, an empty answer.
  out.push(JSON.stringify({ conversations: [{ from: 'human', value: '在吗' }, { from: 'human', value: '怎么退货' }, { from: 'gpt', value: FAQ[12]!.zhA }] }));
  out.push(JSON.stringify({ conversations: [{ from: 'human', value: 'hello?' }, { from: 'gpt', value: 'Hi! How can I help?' }, { from: 'human', value: 'never mind' }] }));
  out.push(JSON.stringify({ conversations: [{ from: 'human', value: '发票什么时候发？' }, { from: 'gpt', value: '   ' }] }));
  write('chats/chat_logs.jsonl', `${out.join('\n')}\n`);
}

// 5. ABCD (MIT): the 3 sample dialogues as sharegpt; agent/customer runs merged, action lines dropped.
function abcd(): void {
  const src = join(SHARED, 'abcd_sample_en');
  const data = JSON.parse(readFileSync(join(src, 'abcd_sample.json'), 'utf8')) as { convo_id: number; original: [string, string][] }[];
  const out: string[] = [];
  for (const d of data) {
    const turns: { from: string; value: string }[] = [];
    for (const [who, text] of d.original) {
      if (who === 'action') continue;
      const from = who === 'customer' ? 'human' : 'gpt';
      const last = turns[turns.length - 1];
      if (last && last.from === from) last.value += ` ${text}`;
      else turns.push({ from, value: text });
    }
    // ShareGPT conversations start with the user; an agent greeting goes first in ABCD.
    while (turns[0]?.from === 'gpt') turns.shift();
    while (turns.length && turns[turns.length - 1]!.from !== 'gpt') turns.pop();
    out.push(JSON.stringify({ id: `abcd-${d.convo_id}`, conversations: turns }));
  }
  write('abcd/abcd_sample_sharegpt.jsonl', `${out.join('\n')}\n`);
  write('abcd/LICENSE', readFileSync(join(src, 'LICENSE')));
}

// 6. CrossWOZ (Apache-2.0): the first 12 validation dialogues, lines copied verbatim.
function crosswoz(): void {
  const src = join(SHARED, 'crosswoz_zh');
  const lines = readFileSync(join(src, 'dialogues_val.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 12);
  write('crosswoz/dialogues_val_sample.jsonl', `${lines.join('\n')}\n`);
  write('crosswoz/LICENSE', readFileSync(join(src, 'LICENSE')));
}

// 7. BANKING77 (CC BY 4.0): 25 queries of 8 payment/refund/account intents, verbatim CSV rows.
function banking77(): void {
  const src = join(SHARED, 'banking77_en');
  const want = new Set([
    'request_refund',
    'Refund_not_showing_up',
    'declined_card_payment',
    'pending_card_payment',
    'transaction_charged_twice',
    'card_payment_fee_charged',
    'passcode_forgotten',
    'edit_personal_details',
  ]);
  const lines = readFileSync(join(src, 'train.csv'), 'utf8').split('\n');
  const per = new Map<string, number>();
  const out = [lines[0]!];
  for (const l of lines.slice(1)) {
    const cat = l.slice(l.lastIndexOf(',') + 1).trim();
    if (!want.has(cat) || (per.get(cat) ?? 0) >= 25) continue;
    per.set(cat, (per.get(cat) ?? 0) + 1);
    out.push(l);
  }
  write('banking77/banking77_sample.csv', `${out.join('\n')}\n`);
  write('banking77/LICENSE', readFileSync(join(src, 'LICENSE')));
}

faqCsv();
faqEnJsonl();
helpCenterJson();
chatLogs();
abcd();
crosswoz();
banking77();
process.stdout.write(`raw data written to ${RAW}\n`);
