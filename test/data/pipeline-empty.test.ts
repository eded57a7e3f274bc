import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { runDataPipeline } from '../../src/data/pipeline.ts';
import { refuseEmptyOutput } from '../../src/data/setup.ts';

/** A progress stream that keeps what was written (warnings go there too). */
function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  let buf = '';
  const w = new Writable({
    write(chunk, _enc, cb) {
      buf += String(chunk);
      cb();
    },
  });
  return { stream: w as unknown as NodeJS.WriteStream, text: () => buf };
}

describe('runs that write nothing', () => {
  test('zero rows written from non-empty input is refused with the top drop reasons, also when up to date', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-zero-'));
    // Plain text rows cannot become conversations: the format step drops every one.
    writeFileSync(join(dir, 'in.jsonl'), '{"text":"hello there"}\n{"text":"second row"}\n');
    const cfg = { inputs: [{ path: 'in.jsonl', formatting: 'text' }], output: { format: 'messages' }, out_dir: 'out' };
    // `loom data run|merge` pass every result through refuseEmptyOutput: its error is the non-zero exit.
    const run = async () => refuseEmptyOutput(await runDataPipeline(cfg as never, { baseDir: dir, quiet: true }));
    for (let i = 0; i < 2; i++) {
      await assert.rejects(run, (e: unknown) => {
        assert.ok(e instanceof LoomError);
        assert.match(e.message, /2 rows read, 0 written/);
        assert.match(e.message, /top reasons: format: .*\(2\)/);
        assert.match(e.hint ?? '', /rejects\.jsonl/);
        return true;
      });
    }
  });

  test('an empty input file gets a warning and a counter, and the other inputs still run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-empty-'));
    writeFileSync(join(dir, 'empty.jsonl'), '');
    writeFileSync(join(dir, 'ok.jsonl'), '{"text":"hello there"}\n');
    const cap = capture();
    const res = await runDataPipeline(
      {
        inputs: [
          { path: 'empty.jsonl', formatting: 'text' },
          { path: 'ok.jsonl', formatting: 'text' },
        ],
        output: { format: 'text' },
        out_dir: 'out',
      } as never,
      { baseDir: dir, progressStream: cap.stream },
    );
    assert.equal(res.counts.output, 1);
    assert.match(cap.text(), /warning: input empty\.jsonl is empty \(0 bytes\)/);
    assert.equal(res.report?.counters.empty_input_files, 1);
  });
});
