import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { LoomError } from '../../src/core/errors.ts';
import type { DataRow } from '../../src/core/types.ts';
import {
  detectEncoding,
  expandInputs,
  type FileInfo,
  globToRegExp,
  htmlToText,
  type IngestItem,
  isMalformed,
  type MalformedRecord,
  malformedToReject,
  markdownToText,
  type ReadOptions,
  readInputs,
} from '../../src/data/ingest/index.ts';

const FIX = resolve('test/fixtures/data/ingest');
const tmp = mkdtempSync(join(tmpdir(), 'loom-ingest-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, data: string | Uint8Array): string {
  const p = join(tmp, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, data);
  return p;
}

async function collect(patterns: string[], opts: ReadOptions = {}) {
  const rows: DataRow[] = [];
  const bad: MalformedRecord[] = [];
  const files: FileInfo[] = [];
  const all: IngestItem[] = [];
  for await (const x of readInputs(patterns, { baseDir: tmp, onFile: (f) => files.push(f), ...opts })) {
    all.push(x);
    if (isMalformed(x)) bad.push(x);
    else rows.push(x);
  }
  return { rows, bad, files, all };
}

describe('ingest: JSONL and JSON', () => {
  it('reads rows with stable ids and reports each malformed line with its 1-based line', async () => {
    write(
      'a.jsonl',
      '{"text":"hello","label":"greet","meta":{"src":"x"},"extra":1}\n{"text": broken\n\n[1,2]\n{"text":42}\n{"messages":[{"role":"user","content":"hi"}]}\n',
    );
    const { rows, bad } = await collect(['a.jsonl']);
    assert.deepEqual(
      rows.map((r) => r.id),
      ['a.jsonl:1', 'a.jsonl:6'],
    );
    assert.equal(rows[0]!.text, 'hello');
    assert.equal(rows[0]!.label, 'greet');
    assert.deepEqual(rows[0]!.meta, { src: 'x', extra: 1 });
    assert.deepEqual(rows[0]!.source, { file: 'a.jsonl', line: 1 });
    assert.deepEqual(rows[1]!.messages, [{ role: 'user', content: 'hi' }]);
    assert.deepEqual(
      bad.map((b) => [b.line, b.reason.split(':')[0]]),
      [
        [2, 'invalid JSON'],
        [4, 'expected a JSON object per line'],
        [5, 'field "text" is not a string'],
      ],
    );
    assert.equal(bad[0]!.raw, '{"text": broken');
    const rej = malformedToReject(bad[0]!);
    assert.equal(rej.step, 'ingest');
    assert.deepEqual(rej.source, { file: 'a.jsonl', line: 2 });
  });

  it('reports an over-long line without assembling it, then reads on', async () => {
    write('long.jsonl', `{"text":"a"}\n{"text":"${'x'.repeat(5000)}"}\n{"text":"c"}\n`);
    const { rows, bad } = await collect(['long.jsonl'], { maxLineBytes: 1000 });
    assert.deepEqual(
      rows.map((r) => [r.source.line, r.text]),
      [
        [1, 'a'],
        [3, 'c'],
      ],
    );
    assert.equal(bad.length, 1);
    assert.equal(bad[0]!.line, 2);
    assert.match(bad[0]!.reason, /line too long/);
  });

  it('maps columns and takes ids from a mapped field', async () => {
    write('m.jsonl', '{"q":"where is my order","intent":"track","uid":"u-7"}\n');
    const { rows } = await collect(['m.jsonl'], { columns: { text: 'q', label: 'intent', id: 'uid' } });
    assert.equal(rows[0]!.id, 'u-7');
    assert.equal(rows[0]!.text, 'where is my order');
    assert.equal(rows[0]!.label, 'track');
    assert.deepEqual(rows[0]!.meta, {});
  });

  it('reads preference rows with a plain-text prompt as one user turn', async () => {
    write('pref.jsonl', '{"prompt":"退货流程？","chosen":"七天内申请即可。","rejected":"不知道"}\n');
    const { rows } = await collect(['pref.jsonl']);
    assert.deepEqual(rows[0]!.prompt, [{ role: 'user', content: '退货流程？' }]);
    assert.equal(rows[0]!.chosen, '七天内申请即可。');
    assert.equal(rows[0]!.rejected, '不知道');
  });

  it('reads JSON arrays by record index, a single object, and JSONL named .json', async () => {
    write('arr.json', '[\n {"text":"a"},\n "junk",\n {"text":"c"}\n]');
    write('one.json', '{\n  "text": "only"\n}\n');
    write('lines.json', '{"text":"l1"}\n{"text":"l2"}\n');
    const r = await collect(['arr.json', 'one.json', 'lines.json']);
    assert.deepEqual(
      r.rows.map((x) => [x.id, x.text]),
      [
        ['arr.json:1', 'a'],
        ['arr.json:3', 'c'],
        ['one.json:1', 'only'],
        ['lines.json:1', 'l1'],
        ['lines.json:2', 'l2'],
      ],
    );
    assert.equal(r.bad.length, 1);
    assert.equal(r.bad[0]!.line, 2);
  });

  it('salvages the good elements of a broken JSON array and names the bad one with its line', async () => {
    write('broken.json', '[\n{"text":"a, [b]"},\n{"text": nope},\n{"text":"c \\" d"}\n]');
    const r = await collect(['broken.json']);
    assert.deepEqual(
      r.rows.map((x) => [x.source.line, x.text]),
      [
        [1, 'a, [b]'],
        [3, 'c " d'],
      ],
    );
    assert.equal(r.bad.length, 1);
    assert.equal(r.bad[0]!.line, 2);
    assert.match(r.bad[0]!.reason, /^invalid JSON in array element 2 \(line 3\)/);
    assert.equal(r.bad[0]!.raw, '{"text": nope}');
  });

  it('refuses whole-file formats above the size limit', async () => {
    write('big.json', `[${'{"text":"x"},'.repeat(100)}{"text":"y"}]`);
    await assert.rejects(collect(['big.json'], { maxJsonBytes: 100 }), (e: unknown) => {
      return e instanceof LoomError && e.code === 'INPUT_FORMAT';
    });
  });
});

describe('ingest: CSV / TSV', () => {
  it('maps header columns, keeps multi-line quoted cells, and reports bad quoting and field counts', async () => {
    write('c.csv', 'q,intent,extra\n"hello, world",greet,1\nbad "quote,x,2\n"multi\nline",m,3\nshort,row\nlast,l,4\n');
    const { rows, bad, all } = await collect(['c.csv'], { columns: { text: 'q', label: 'intent' } });
    assert.deepEqual(
      rows.map((r) => [r.id, r.text, r.label, r.meta.extra]),
      [
        ['c.csv:2', 'hello, world', 'greet', '1'],
        ['c.csv:4', 'multi\nline', 'm', '3'],
        ['c.csv:7', 'last', 'l', '4'],
      ],
    );
    assert.deepEqual(
      bad.map((b) => [b.line, b.raw]),
      [
        [3, 'bad "quote,x,2'],
        [6, 'short,row'],
      ],
    );
    assert.ok(bad.every((b) => b.reason.startsWith('bad CSV')));
    // Items come out in file order.
    assert.deepEqual(
      all.map((x) => (isMalformed(x) ? x.line : x.source.line)),
      [2, 3, 4, 6, 7],
    );
  });

  it('reports a line with stray quotes once, in words, and an unclosed quote as one record to the end', async () => {
    // The example's broken export line (three quotes, last line): csv-parse raises three errors for it and quotes
    // one byte of 银 as Latin-1 ("é"); it must be one malformed record with a readable reason.
    write('q1.csv', '问题,答案\n好的,ok\n"付款时提示"银行卡异常"怎么办？,请更换银行卡\n');
    const one = await collect(['q1.csv']);
    assert.deepEqual(
      one.rows.map((r) => r.id),
      ['q1.csv:2'],
    );
    assert.deepEqual(
      one.bad.map((b) => [b.line, b.raw]),
      [[3, '"付款时提示"银行卡异常"怎么办？,请更换银行卡']],
    );
    assert.match(one.bad[0]!.reason, /^bad CSV: a quote inside a quoted field is not doubled/);
    // Stray quotes mid-file: the next line survives; an unclosed quote swallows the rest as one record.
    write('q2.csv', '问题,答案\n"付款时提示"银行卡异常"怎么办？",请更换银行卡\n好的,ok\n"未闭合,x\n最后,y\n');
    const two = await collect(['q2.csv']);
    assert.deepEqual(
      two.rows.map((r) => r.id),
      ['q2.csv:3'],
    );
    assert.deepEqual(
      two.bad.map((b) => [b.line, b.raw]),
      [
        [2, '"付款时提示"银行卡异常"怎么办？",请更换银行卡'],
        [4, '"未闭合,x\n最后,y'],
      ],
    );
    assert.match(two.bad[1]!.reason, /never closed .*line 5/);
    // No Latin-1 rendering of UTF-8 bytes in any reason.
    for (const b of [...one.bad, ...two.bad]) assert.doesNotMatch(b.reason, /[\u0080-\u00ff]/);
  });

  it('reads TSV and parses JSON messages cells', async () => {
    write('t.tsv', 'messages\tlabel\n[{"role":"user","content":"你好"}]\tzh\n');
    const { rows } = await collect(['t.tsv']);
    assert.deepEqual(rows[0]!.messages, [{ role: 'user', content: '你好' }]);
    assert.equal(rows[0]!.label, 'zh');
  });

  it('fails with INPUT_FORMAT when a mapped column is missing', async () => {
    write('h.csv', 'a,b\n1,2\n');
    await assert.rejects(collect(['h.csv'], { columns: { text: 'question' } }), (e: unknown) => {
      return e instanceof LoomError && e.code === 'INPUT_FORMAT' && /question/.test(e.message);
    });
  });

  it('strict mode throws INPUT_MALFORMED with file and line', async () => {
    write('s.csv', 'text\nok\nbad "q\n');
    await assert.rejects(collect(['s.csv'], { strict: true }), (e: unknown) => {
      return e instanceof LoomError && e.code === 'INPUT_MALFORMED' && e.file === 's.csv' && e.line === 3;
    });
    write('s.jsonl', '{"text":"ok"}\n{oops\n');
    await assert.rejects(collect(['s.jsonl'], { strict: true }), (e: unknown) => {
      return e instanceof LoomError && e.code === 'INPUT_MALFORMED' && e.line === 2 && /s\.jsonl:2/.test(e.format());
    });
  });
});

describe('ingest: encodings', () => {
  it('detects GBK (decoded as GB18030) in a CSV fixture and reports it', async () => {
    const { rows, files } = await collect([join(FIX, 'gbk.csv')], { columns: { text: 'question', label: 'intent' } });
    assert.equal(files[0]!.encoding, 'gb18030');
    assert.deepEqual(
      rows.map((r) => [r.text, r.label, r.source.line]),
      [
        ['我想退货', '退货', 2],
        ['发票怎么开？\n需要公司抬头', '发票', 3],
      ],
    );
  });

  it('decodes hand-written GBK bytes (你好 = C4E3 BAC3) and a GB18030-only character', async () => {
    write('gbk.txt', Buffer.concat([Buffer.from('c4e3bac3', 'hex'), Buffer.from('\n')]));
    const a = await collect(['gbk.txt']);
    assert.equal(a.rows[0]!.text, '你好');
    const b = await collect([join(FIX, 'gb18030.txt')]);
    assert.equal(b.files[0]!.encoding, 'gb18030');
    assert.deepEqual(
      b.rows.map((r) => r.text),
      ['扩展字符\u{20000}测试', '第二行'],
    );
  });

  it('handles UTF-8 with BOM and UTF-16 LE/BE with BOM', async () => {
    const r = await collect([join(FIX, 'utf8bom.jsonl'), join(FIX, 'utf16le.txt'), join(FIX, 'utf16be.txt')]);
    assert.deepEqual(
      r.files.map((f) => f.encoding),
      ['utf8-bom', 'utf16le', 'utf16be'],
    );
    assert.deepEqual(
      r.rows.map((x) => x.text),
      ['带BOM的行', 'héllo 世界', 'zweite Zeile', 'héllo 世界', 'zweite Zeile'],
    );
  });

  it('keeps a mostly-UTF-8 file as UTF-8 and reports the undecodable line', async () => {
    const r = await collect([join(FIX, 'bad-utf8.jsonl')]);
    assert.equal(r.files[0]!.encoding, 'utf8');
    assert.deepEqual(
      r.rows.map((x) => x.text),
      ['好的', '第三行'],
    );
    assert.equal(r.bad.length, 1);
    assert.equal(r.bad[0]!.line, 2);
    assert.match(r.bad[0]!.reason, /undecodable bytes/);
  });

  it('reports undecodable bytes inside CSV records and TXT blocks with their line', async () => {
    const u = (t: string) => Buffer.from(t, 'utf8');
    write(
      'u.csv',
      Buffer.concat([
        u('text,label\n好的,a\n'),
        Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2c, 0x62, 0x0a]),
        u('再见,c\n'),
      ]),
    );
    const c = await collect(['u.csv']);
    assert.deepEqual(
      c.rows.map((r) => r.text),
      ['好的', '再见'],
    );
    assert.deepEqual(
      c.bad.map((b) => [b.line, b.reason.split(' (')[0]]),
      [[3, 'undecodable bytes']],
    );
    write('u.txt', Buffer.concat([u('第一段\n\n'), Buffer.from([0x61, 0xff, 0x0a]), u('同一段\n\n第三段\n')]));
    const t = await collect(['u.txt'], { txtMode: 'block' });
    assert.deepEqual(
      t.rows.map((r) => r.text),
      ['第一段', '第三段'],
    );
    assert.equal(t.bad[0]!.line, 3);
    assert.match(t.bad[0]!.reason, /undecodable bytes at line 3/);
  });

  it('detectEncoding: UTF-16 without BOM by NUL positions, plain ASCII as UTF-8', () => {
    assert.equal(detectEncoding(Buffer.from('hello world\n', 'utf16le'), true), 'utf16le');
    assert.equal(detectEncoding(Buffer.from('hello world\n', 'utf16le').swap16(), true), 'utf16be');
    assert.equal(detectEncoding(Buffer.from('plain ascii\n'), true), 'utf8');
  });
});

describe('ingest: compression, parquet, text formats', () => {
  it('reads .gz and .zst (made by gzip and the zstd CLI) like the plain file', async () => {
    const r = await collect([join(FIX, 'rows.jsonl'), join(FIX, 'rows.jsonl.gz'), join(FIX, 'rows.jsonl.zst')]);
    const texts = r.rows.map((x) => x.text);
    assert.deepEqual(texts, [
      'first row 第一行',
      'second row',
      'first row 第一行',
      'second row',
      'first row 第一行',
      'second row',
    ]);
    assert.deepEqual(
      r.bad.map((b) => b.line),
      [3, 3, 3],
    );
  });

  it('reports a corrupt gzip stream as malformed and continues with the next file', async () => {
    const r = await collect([join(FIX, 'corrupt.jsonl.gz'), join(FIX, 'rows.jsonl')]);
    assert.ok(r.bad.some((b) => /unreadable input/.test(b.reason) && b.file.endsWith('corrupt.jsonl.gz')));
    assert.ok(r.rows.some((x) => x.source.file.endsWith('rows.jsonl')));
  });

  it('reports a truncated .zst stream and a file that is not Parquet, then reads on', async () => {
    // Zstandard magic 28 B5 2F FD followed by a frame header that ends too early.
    write('cut.jsonl.zst', new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x10, 0x01]));
    write('not.parquet', 'id,text\n1,this is CSV\n');
    write('fine.jsonl', '{"text":"ok"}\n');
    const r = await collect(['cut.jsonl.zst', 'not.parquet', 'fine.jsonl']);
    assert.deepEqual(
      r.bad.map((b) => [b.file, b.line]),
      [
        ['cut.jsonl.zst', 1],
        ['not.parquet', 1],
      ],
    );
    assert.match(r.bad[0]!.reason, /unreadable input/);
    assert.match(r.bad[1]!.reason, /unreadable Parquet file/);
    assert.deepEqual(
      r.rows.map((x) => x.text),
      ['ok'],
    );
    await assert.rejects(collect(['not.parquet'], { strict: true }), (e: unknown) => {
      return e instanceof LoomError && e.code === 'INPUT_MALFORMED' && e.file === 'not.parquet';
    });
  });

  it('reads Parquet in row batches (written with hyparquet-writer)', async () => {
    const n = 25;
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'content', data: Array.from({ length: n }, (_, i) => `row ${i}`), type: 'STRING' },
        { name: 'y', data: Array.from({ length: n }, (_, i) => (i % 2 ? 'odd' : 'even')), type: 'STRING' },
        { name: 'n', data: Array.from({ length: n }, (_, i) => BigInt(i)), type: 'INT64' },
      ],
    });
    write('p.parquet', new Uint8Array(buf));
    const r = await collect(['p.parquet'], { columns: { text: 'content', label: 'y' }, parquetBatch: 7 });
    assert.equal(r.rows.length, n);
    assert.equal(r.files[0]!.encoding, 'binary');
    assert.deepEqual(
      [r.rows[0]!.id, r.rows[0]!.text, r.rows[0]!.label, r.rows[0]!.meta.n],
      ['p.parquet:1', 'row 0', 'even', 0],
    );
    assert.deepEqual([r.rows[24]!.text, r.rows[24]!.source.line], ['row 24', 25]);
  });

  it('reads TXT per line or per blank-line block', async () => {
    write('d.txt', 'line one\n\nline two\nstill two\n\n\nthree\n');
    const a = await collect(['d.txt']);
    assert.deepEqual(
      a.rows.map((r) => [r.source.line, r.text]),
      [
        [1, 'line one'],
        [3, 'line two'],
        [4, 'still two'],
        [7, 'three'],
      ],
    );
    const b = await collect(['d.txt'], { txtMode: 'block' });
    assert.deepEqual(
      b.rows.map((r) => [r.source.line, r.text]),
      [
        [1, 'line one'],
        [3, 'line two\nstill two'],
        [7, 'three'],
      ],
    );
  });

  it('converts Markdown and HTML to text', async () => {
    assert.equal(
      markdownToText(
        '# Title\n\nSome **bold** and _it_ with [a link](http://x.y) and `code`.\n\n> quote\n\n- item one\n',
      ),
      'Title\n\nSome bold and it with a link and code.\n\nquote\n\n- item one',
    );
    assert.equal(markdownToText('keep snake_case_name and 2*3*4'), 'keep snake_case_name and 2*3*4');
    const html =
      '<html><head><title>T</title><style>p{color:red}</style></head><body><h1>退货政策</h1><p>七天&nbsp;无理由 &amp; 免费</p><script>alert(1)</script><div>Line<br>break</div></body></html>';
    assert.equal(htmlToText(html), '退货政策\n七天 无理由 & 免费\nLine\nbreak');
    write('page.html', html);
    write('doc.md', '## FAQ\n\nHow do I *return* an item?\n');
    const r = await collect(['page.html', 'doc.md']);
    assert.deepEqual(
      r.rows.map((x) => x.text),
      ['退货政策\n七天 无理由 & 免费\nLine\nbreak', 'FAQ\n\nHow do I return an item?'],
    );
  });
});

describe('ingest: globs and directories', () => {
  it('expands globs, braces, directories; keeps pattern order; fails on no match', () => {
    write('g/x/one.jsonl', '{}\n');
    write('g/y/two.jsonl', '{}\n');
    write('g/y/skip.bin', 'x');
    write('g/three.csv', 'a\n1\n');
    const rel = (ps: string[]) =>
      ps.map((p) =>
        p
          .slice(tmp.length + 1)
          .split('\\')
          .join('/'),
      );
    assert.deepEqual(rel(expandInputs(['g/**/*.jsonl'], { baseDir: tmp })), ['g/x/one.jsonl', 'g/y/two.jsonl']);
    assert.deepEqual(rel(expandInputs(['g/*.{csv,jsonl}'], { baseDir: tmp })), ['g/three.csv']);
    assert.deepEqual(rel(expandInputs(['g'], { baseDir: tmp })), ['g/three.csv', 'g/x/one.jsonl', 'g/y/two.jsonl']);
    assert.deepEqual(rel(expandInputs(['g/y/two.jsonl', 'g/x/*.jsonl'], { baseDir: tmp })), [
      'g/y/two.jsonl',
      'g/x/one.jsonl',
    ]);
    assert.throws(
      () => expandInputs(['nothing/*.jsonl'], { baseDir: tmp }),
      (e: unknown) => e instanceof LoomError && e.code === 'INPUT_NOT_FOUND',
    );
    assert.ok(globToRegExp('a/**/b?.[jt]s').test('a/x/y/b1.ts'));
    assert.ok(globToRegExp('a/**/b?.[jt]s').test('a/b1.js'));
    assert.ok(!globToRegExp('a/*.ts').test('a/x/b.ts'));
  });
});
