import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runDataPipeline } from '../../src/data/pipeline.ts';
import { REJECT_HEAD_CHARS, rejectLine } from '../../src/data/reject-cap.ts';

describe('rejects over the size cap', () => {
  test('a 50 MB row is stored as size + sha256 + head of its JSON, within seconds', () => {
    const n = 50 * 1024 * 1024;
    const text = 'a'.repeat(n);
    // The row's JSON written out by hand (not by JSON.stringify) and hashed here: the golden values.
    const json = `{"id":"big","text":"${text}"}`;
    const sha = createHash('sha256').update(json).digest('hex');
    const t0 = Date.now();
    const { line } = rejectLine({
      step: 'filters',
      reason: 'too_long',
      action: 'dropped',
      source: { file: 'in.jsonl', line: 7 },
      row: { id: 'big', text },
    });
    // A generous bound: it catches a quadratic or copying path (minutes), not a busy machine (8x load here).
    assert.ok(Date.now() - t0 < 60_000, `took ${Date.now() - t0} ms`);
    assert.ok(line.length < 16 * 1024, `line is ${line.length} chars`);
    const rec = JSON.parse(line);
    assert.deepEqual(rec.source, { file: 'in.jsonl', line: 7 });
    assert.equal(rec.reason, 'too_long');
    assert.equal(rec.row.truncated, true);
    assert.equal(rec.row.bytes, n + 22); // {"id":"big","text":""} is 22 bytes
    assert.equal(rec.row.sha256, sha);
    assert.equal(rec.row.head, json.slice(0, REJECT_HEAD_CHARS));
  });

  test('small rejects are stored whole', () => {
    const r = { step: 's', reason: 'r', action: 'dropped' as const, source: { file: 'f', line: 1 }, row: { id: 'x' } };
    assert.equal(
      rejectLine(r).line,
      '{"step":"s","reason":"r","action":"dropped","source":{"file":"f","line":1},"row":{"id":"x"}}',
    );
  });

  test('through a run: a 3 MB rejected row lands truncated in rejects.jsonl, the small one whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-rejcap-'));
    const big = 'b'.repeat(3 * 1024 * 1024);
    writeFileSync(join(dir, 'in.jsonl'), `{"text":"${big}"}\n{"text":"small row"}\n`);
    // Plain text rows cannot become conversations: the format step rejects both.
    const cfg = { inputs: [{ path: 'in.jsonl', formatting: 'text' }], output: { format: 'messages' }, out_dir: 'out' };
    await runDataPipeline(cfg as never, { baseDir: dir, quiet: true });
    const path = join(dir, 'out', 'rejects.jsonl');
    assert.ok(statSync(path).size < 64 * 1024);
    const recs = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const trunc = recs.filter((r) => r.row?.truncated === true);
    assert.equal(trunc.length, 1);
    assert.ok(trunc[0].row.bytes > big.length);
    assert.match(trunc[0].row.sha256, /^[0-9a-f]{64}$/);
    assert.equal(trunc[0].source.line, 1);
    assert.ok(recs.some((r) => JSON.stringify(r.row).includes('small row')));
  });
});
