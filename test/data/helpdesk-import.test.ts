/**
 * Helpdesk-export shapes: turns that hold a list of utterances (`turns[].utterances`), and conversations that end
 * with the customer speaking. The fixture (test/fixtures/data/helpdesk/export.jsonl) is shaped like a chat-tool
 * export: ticket metadata, a speaker and a list of messages per turn, timestamps the importer does not need.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { importRecord } from '../../src/data/formats/index.ts';
import { lintRows } from '../../src/data/lint.ts';
import { runDataPipeline } from '../../src/data/pipeline.ts';

const FIX = 'test/fixtures/data/helpdesk';
const TAGS = { role_tag: 'speaker', content_tag: 'utterances', user_tag: 'customer', assistant_tag: 'agent' };
const SRC = { file: 'export.jsonl', line: 1 };

type Msg = { role: string; content: string };
type Reject = {
  step: string;
  reason: string;
  action: string;
  row: { meta: Record<string, unknown> };
  detail?: { kept_turns?: number; trimmed?: Msg[] };
};

function jsonl<T = Record<string, unknown>>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

describe('turns[].utterances through the sharegpt tag mapping', () => {
  const rec = {
    turns: [
      { speaker: 'customer', utterances: ['Hi there', 'my parcel is late'] },
      { speaker: 'agent', utterances: ['Hello!', 'Let me check.', 'It ships today.'] },
    ],
  };

  test('utterances are joined in order, one per line by default', () => {
    const row = importRecord(rec, 'sharegpt', SRC, 'r1', { columns: { messages: 'turns' }, tags: TAGS });
    assert.deepEqual(row.messages, [
      { role: 'user', content: 'Hi there\nmy parcel is late' },
      { role: 'assistant', content: 'Hello!\nLet me check.\nIt ships today.' },
    ]);
  });

  test('the separator is configurable', () => {
    const row = importRecord(rec, 'sharegpt', SRC, 'r1', {
      columns: { messages: 'turns' },
      tags: { ...TAGS, utterance_separator: ' ' },
    });
    assert.equal(row.messages?.[1]?.content, 'Hello! Let me check. It ships today.');
  });

  test('a non-string utterance is an error naming the turn and the utterance', () => {
    const bad = { turns: [{ speaker: 'customer', utterances: ['hi', 7] }] };
    assert.throws(
      () => importRecord(bad, 'sharegpt', SRC, 'r1', { columns: { messages: 'turns' }, tags: TAGS }),
      (e: unknown) =>
        e instanceof LoomError &&
        e.code === 'INPUT_MALFORMED' &&
        /turns\[0\]\.utterances\[1\] must be a string, got number/.test(e.message),
    );
  });

  test('the linter reads the same shape', async () => {
    const rep = await lintRows([{ line: 1, raw: '', value: rec }], {
      format: 'sharegpt',
      formatOptions: { columns: { messages: 'turns' }, tags: TAGS },
    });
    assert.equal(rep.errors, 0, JSON.stringify(rep.findings));
    const bad = await lintRows([{ line: 1, raw: '', value: { turns: [{ speaker: 'customer', utterances: 3 }] } }], {
      format: 'sharegpt',
      formatOptions: { columns: { messages: 'turns' }, tags: TAGS },
    });
    assert.equal(bad.byCode.non_string_content, 1);
  });
});

describe('a helpdesk export through loom data run', () => {
  async function run(overrides: string[] = []) {
    const dir = mkdtempSync(join(tmpdir(), 'loom-helpdesk-'));
    cpSync(FIX, dir, { recursive: true });
    const res = await runDataPipeline(join(dir, 'data.yaml'), { quiet: true, overrides });
    const rows = jsonl<{ messages: Msg[]; meta: Record<string, unknown> }>(join(dir, 'out', 'train.jsonl'));
    const rejects = jsonl<Reject>(join(dir, 'out', 'rejects.jsonl'));
    return { res, rows, rejects };
  }

  test('conversations ending with the customer are trimmed to the last agent turn, with the cut turns in rejects', async () => {
    const { res, rows, rejects } = await run();
    // 5 tickets: one has a non-string utterance (malformed), one has no agent turn at all (dropped).
    assert.equal(res.counts.input, 5);
    assert.equal(res.counts.output, 3);
    const byTicket = new Map(rows.map((r) => [r.meta.ticket_id, r]));
    const t1 = byTicket.get('HD-10421')!;
    assert.equal(t1.messages.length, 4);
    assert.equal(t1.messages.at(-1)!.role, 'assistant');
    assert.equal(
      t1.messages[0]!.content,
      "Hi there\nMy parcel was meant to arrive yesterday but the tracking hasn't moved since Friday",
    );
    assert.equal(byTicket.get('HD-10422')!.messages.length, 4, 'already ends with the agent: untouched');
    assert.equal(byTicket.get('HD-10423')!.messages.length, 2);

    const trimmed = rejects.filter((r) => r.reason === 'format.trimmed_trailing_turns');
    assert.equal(trimmed.length, 2);
    for (const r of trimmed) assert.equal(r.action, 'changed');
    const cut = new Map(trimmed.map((r) => [r.row.meta.ticket_id, r.detail]));
    assert.deepEqual(cut.get('HD-10421'), {
      kept_turns: 4,
      trimmed: [{ role: 'user', content: 'Great, thanks a lot' }],
    });
    assert.deepEqual(cut.get('HD-10423')?.trimmed, [
      { role: 'user', content: '好的' },
      { role: 'user', content: '那电子发票多久能收到？' },
    ]);
    const dropped = rejects.filter((r) => r.action === 'dropped').map((r) => r.reason);
    assert.equal(dropped.length, 2);
    assert.ok(
      dropped.some((r) => r.startsWith('format: turns[1].utterances[1] must be a string')),
      dropped.join(),
    );
    assert.ok(
      dropped.some((r) => r.startsWith('format.')),
      dropped.join(),
    );
  });

  test('output.trailing_user=drop keeps the old behaviour: the whole conversation is rejected', async () => {
    const { res, rows, rejects } = await run(['output.trailing_user=drop']);
    assert.equal(res.counts.output, 1);
    assert.deepEqual(
      rows.map((r) => r.meta.ticket_id),
      ['HD-10422'],
    );
    assert.equal(rejects.filter((r) => r.reason === 'format.trimmed_trailing_turns').length, 0);
    const reasons = new Map(rejects.filter((r) => r.step === 'format').map((r) => [r.row.meta.ticket_id, r.reason]));
    assert.equal(reasons.get('HD-10421'), 'format.last_not_assistant');
    // Its two customer turns in a row are reported first; either way the whole ticket is gone.
    assert.equal(reasons.get('HD-10423'), 'format.role_order');
  });
});
