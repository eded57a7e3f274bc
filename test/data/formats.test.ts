import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import type { DataRow } from '../../src/core/types.ts';
import { fromAlpaca, toAlpaca } from '../../src/data/formats/alpaca.ts';
import { fromCanonical, toCanonical } from '../../src/data/formats/canonical.ts';
import { convert } from '../../src/data/formats/convert.ts';
import { detectFormat, exportRow, importRecord } from '../../src/data/formats/index.ts';
import { readJsonRecords, topLevelElementLines } from '../../src/data/formats/io.ts';
import {
  readRegistry,
  readRegistryDatasets,
  registryDatasetFiles,
  registryEntryFor,
  writeRegistry,
} from '../../src/data/formats/llamafactory.ts';
import { fromOpenAi, toOpenAi } from '../../src/data/formats/openai.ts';
import { fromShareGpt, toShareGpt } from '../../src/data/formats/sharegpt.ts';

const src = { file: 'x.jsonl', line: 3 };
const LF = 'test/fixtures/data/llamafactory';

function row(partial: Partial<DataRow>): DataRow {
  return { id: 'r1', meta: {}, source: src, ...partial };
}

describe('alpaca (LLaMA-Factory data/README.md semantics)', () => {
  test('prompt is instruction + "\\n" + input; history pairs become turns; system first', () => {
    const r = fromAlpaca(
      {
        instruction: 'Reset my password',
        input: 'account: a@b.c',
        output: 'Go to Settings.',
        system: 'You are SupportBot.',
        history: [['hi', 'Hello!']],
      },
      src,
      'id',
    );
    assert.deepEqual(r.messages, [
      { role: 'system', content: 'You are SupportBot.' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Reset my password\naccount: a@b.c' },
      { role: 'assistant', content: 'Go to Settings.' },
    ]);
  });

  test('empty input adds no newline; custom columns; preference pair', () => {
    const r = fromAlpaca({ q: 'Hi?', a: 'Hello.' }, src, 'id', { prompt: 'q', response: 'a' });
    assert.deepEqual(r.messages, [
      { role: 'user', content: 'Hi?' },
      { role: 'assistant', content: 'Hello.' },
    ]);
    const p = fromAlpaca({ instruction: 'Refund?', input: '', chosen: 'Yes.', rejected: 'No.' }, src, 'id');
    assert.deepEqual(p.prompt, [{ role: 'user', content: 'Refund?' }]);
    assert.equal(p.chosen, 'Yes.');
    assert.equal(p.rejected, 'No.');
  });

  test('round trip messages → alpaca → messages', () => {
    const messages = [
      { role: 'system' as const, content: 'S' },
      { role: 'user' as const, content: 'u1' },
      { role: 'assistant' as const, content: 'a1' },
      { role: 'user' as const, content: 'u2' },
      { role: 'assistant' as const, content: 'a2' },
    ];
    const a = toAlpaca(row({ messages }));
    assert.deepEqual(a, { instruction: 'u2', input: '', output: 'a2', system: 'S', history: [['u1', 'a1']] });
    assert.deepEqual(fromAlpaca(a, src, 'id').messages, messages);
  });

  test('a conversation with a tool turn cannot be alpaca', () => {
    const messages = [
      { role: 'user' as const, content: 'u' },
      { role: 'tool' as const, content: 't' },
      { role: 'assistant' as const, content: 'a' },
    ];
    assert.throws(
      () => toAlpaca(row({ messages })),
      (e: unknown) => e instanceof LoomError && e.code === 'INPUT_MALFORMED',
    );
  });

  test('per-message loss weights cannot be expressed in alpaca', () => {
    const messages = [
      { role: 'user' as const, content: 'u1' },
      { role: 'assistant' as const, content: 'a1', loss_weight: 0 },
      { role: 'user' as const, content: 'u2' },
      { role: 'assistant' as const, content: 'a2' },
    ];
    assert.throws(() => toAlpaca(row({ messages })), /loss_weight/);
  });

  test('missing output is an error naming file and line', () => {
    assert.throws(
      () => fromAlpaca({ instruction: 'x' }, src, 'id'),
      (e: unknown) => e instanceof LoomError && e.file === 'x.jsonl' && e.line === 3 && /output/.test(e.message),
    );
  });
});

describe('sharegpt', () => {
  test('default tags human/gpt/system/function_call/observation', () => {
    const r = fromShareGpt(
      {
        conversations: [
          { from: 'human', value: 'weather?' },
          { from: 'function_call', value: '{"name":"w"}' },
          { from: 'observation', value: '{"t":21}' },
          { from: 'gpt', value: '21 degrees' },
        ],
        system: 'tools ok',
        tools: '[]x',
      },
      src,
      'id',
    );
    assert.deepEqual(
      r.messages?.map((m) => m.role),
      ['system', 'user', 'assistant', 'tool', 'assistant'],
    );
    assert.deepEqual(r.meta.function_call_turns, [2]);
    assert.equal(r.meta.tools, '[]x');
    // Back to sharegpt: the function_call tag and the system column come back.
    const back = toShareGpt(r);
    assert.deepEqual(back, {
      system: 'tools ok',
      conversations: [
        { from: 'human', value: 'weather?' },
        { from: 'function_call', value: '{"name":"w"}' },
        { from: 'observation', value: '{"t":21}' },
        { from: 'gpt', value: '21 degrees' },
      ],
      tools: '[]x',
    });
  });

  test('custom tags and columns (like LLaMA-Factory `tags`)', () => {
    const opts = {
      columns: { messages: 'dialog' },
      tags: { role_tag: 'speaker', content_tag: 'text', user_tag: 'customer', assistant_tag: 'agent' },
    };
    const r = fromShareGpt(
      {
        dialog: [
          { speaker: 'customer', text: 'late order' },
          { speaker: 'agent', text: 'checking' },
        ],
      },
      src,
      'id',
      opts,
    );
    assert.deepEqual(r.messages, [
      { role: 'user', content: 'late order' },
      { role: 'assistant', content: 'checking' },
    ]);
    assert.deepEqual(toShareGpt(r, opts), {
      dialog: [
        { speaker: 'customer', text: 'late order' },
        { speaker: 'agent', text: 'checking' },
      ],
    });
  });

  test('unknown role tag is an error with a hint', () => {
    assert.throws(
      () => fromShareGpt({ conversations: [{ from: 'boss', value: 'x' }] }, src, 'id'),
      (e: unknown) => e instanceof LoomError && /unknown from "boss"/.test(e.message) && /tags/.test(e.hint ?? ''),
    );
  });

  test('preference: chosen/rejected are single messages after the conversation', () => {
    const rec = {
      conversations: [{ from: 'human', value: 'Refund?' }],
      chosen: { from: 'gpt', value: 'Yes.' },
      rejected: { from: 'gpt', value: 'No.' },
    };
    const r = fromShareGpt(rec, src, 'id');
    assert.deepEqual(r.prompt, [{ role: 'user', content: 'Refund?' }]);
    assert.deepEqual(r.chosen, [{ role: 'assistant', content: 'Yes.' }]);
    assert.deepEqual(toShareGpt(r), rec);
  });
});

describe('OpenAI fine-tuning JSONL', () => {
  test('chat with weight ↔ loss_weight', () => {
    const rec = {
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'old answer', weight: 0 },
        { role: 'user', content: 'again' },
        { role: 'assistant', content: 'new answer', weight: 1 },
      ],
    };
    const r = fromOpenAi(rec, src, 'id');
    assert.equal(r.messages?.[1]?.loss_weight, 0);
    assert.deepEqual(toOpenAi(r), rec);
  });

  test('preference format: input.messages, preferred_output, non_preferred_output', () => {
    const rec = {
      input: { messages: [{ role: 'user', content: 'How cold is it?' }] },
      preferred_output: [{ role: 'assistant', content: 'It is 5 degrees.' }],
      non_preferred_output: [{ role: 'assistant', content: 'Cold.' }],
    };
    assert.equal(detectFormat(rec), 'openai');
    const r = fromOpenAi(rec, src, 'id');
    assert.deepEqual(r.prompt, [{ role: 'user', content: 'How cold is it?' }]);
    assert.deepEqual(toOpenAi(r), rec);
  });

  test('a loss_weight OpenAI cannot express is refused', () => {
    const r = row({
      messages: [
        { role: 'user', content: 'u' },
        { role: 'assistant', content: 'a', loss_weight: 0.5 },
      ],
    });
    assert.throws(() => toOpenAi(r), /weight/);
  });
});

describe('canonical formats', () => {
  test('messages with loss_weight and meta round trip', () => {
    const rec = {
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a', loss_weight: 0.5 },
      ],
      meta: { k: 1 },
    };
    assert.deepEqual(toCanonical(fromCanonical(rec, src, 'id')), rec);
  });

  test('text, classification and preference round trip', () => {
    for (const rec of [
      { text: 'hello', meta: {} },
      { text: 'where is my card', label: 'card_arrival', meta: {} },
      { prompt: [{ role: 'user', content: 'p' }], chosen: 'good', rejected: 'bad', meta: {} },
    ]) {
      assert.deepEqual(toCanonical(fromCanonical(rec, src, 'id')), rec);
    }
  });

  test('a row of one kind cannot be written as another', () => {
    assert.throws(
      () => exportRow(row({ text: 'x', label: 'y' }), 'messages'),
      /classification row cannot be written as messages/,
    );
  });

  test('auto-detection picks the importer from the keys', () => {
    assert.equal(detectFormat({ instruction: 'a', output: 'b' }), 'alpaca');
    assert.equal(detectFormat({ conversations: [] }), 'sharegpt');
    assert.equal(detectFormat({ messages: [{ from: 'human', value: 'x' }] }), 'sharegpt');
    assert.equal(detectFormat({ messages: [{ role: 'user', content: 'x' }] }), 'messages');
    assert.equal(detectFormat({ text: 'a', label: 'b' }), 'classification');
    assert.equal(detectFormat({ text: 'a' }), 'text');
    const r = importRecord(
      {
        messages: [
          { from: 'human', value: 'q' },
          { from: 'gpt', value: 'a' },
        ],
      },
      'auto',
      src,
      'id',
    );
    assert.deepEqual(
      r.messages?.map((m) => m.role),
      ['user', 'assistant'],
    );
  });
});

describe('JSON records reader', () => {
  test('array elements keep the line they start on', () => {
    assert.deepEqual(topLevelElementLines('[\n {"a": "[x]"},\n\n {"b": {"c": 1}}, 3\n]'), [2, 4, 4]);
  });

  test('JSONL: broken lines become errors with their line numbers', async () => {
    const items = [];
    for await (const r of readJsonRecords(`${LF}/support_openai.jsonl`)) items.push(r);
    assert.equal(items.length, 2);
    assert.ok('value' in items[0]!);
    assert.equal(items[1]!.line, 2);
    assert.ok('error' in items[1]! && /invalid JSON/.test(items[1].error));
  });
});

describe('LLaMA-Factory dataset_info.json', () => {
  test('reads every local dataset with its columns and tags', async () => {
    const byName = new Map<string, DataRow[]>();
    const errors: string[] = [];
    for await (const it of readRegistryDatasets(`${LF}/dataset_info.json`, [
      'support_alpaca',
      'support_sharegpt',
      'support_openai',
      'support_dpo',
      'support_pt',
      'custom_tags',
    ])) {
      if ('row' in it) byName.set(it.dataset, [...(byName.get(it.dataset) ?? []), it.row]);
      else errors.push(`${it.dataset}:${it.line}`);
    }
    assert.deepEqual(byName.get('support_alpaca')?.[0]?.messages?.[3], {
      role: 'user',
      content: 'Reset my password\naccount: a@b.c',
    });
    assert.equal(byName.get('support_alpaca')?.[0]?.source.line, 2);
    assert.equal(byName.get('support_alpaca')?.[1]?.source.line, 9);
    assert.deepEqual(
      byName.get('support_sharegpt')?.[0]?.messages?.map((m) => m.role),
      ['system', 'user', 'assistant', 'tool', 'assistant'],
    );
    assert.equal(byName.get('support_openai')?.[0]?.messages?.[2]?.content, 'Your refund is on its way.');
    assert.deepEqual(byName.get('support_dpo')?.[0]?.chosen, [
      { role: 'assistant', content: 'Yes, within 7 days of delivery.' },
    ]);
    assert.deepEqual(
      byName.get('support_pt')?.map((r) => r.text),
      ['Lumi Store ships within 24 hours.', 'Returns are free for defects.'],
    );
    assert.equal(byName.get('custom_tags')?.length, 1);
    // The broken JSONL line and the unknown speaker are reported with their lines, not lost.
    assert.deepEqual(errors.sort(), ['custom_tags:2', 'support_openai:2']);
  });

  test('num_samples caps one dataset only; a folder dataset gives each file its own ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-lf-'));
    mkdirSync(join(dir, 'parts'));
    const rec = (t: string) => JSON.stringify({ instruction: t, output: 'ok' });
    writeFileSync(join(dir, 'a.jsonl'), `${rec('a1')}\n${rec('a2')}\n${rec('a3')}\n`);
    writeFileSync(join(dir, 'parts', '1.jsonl'), `${rec('p1')}\n`);
    writeFileSync(join(dir, 'parts', '2.jsonl'), `${rec('p2')}\n`);
    writeFileSync(
      join(dir, 'dataset_info.json'),
      JSON.stringify({ first: { file_name: 'a.jsonl', num_samples: 2 }, folder: { file_name: 'parts' } }),
    );
    const ids: string[] = [];
    for await (const it of readRegistryDatasets(join(dir, 'dataset_info.json'))) if ('row' in it) ids.push(it.row.id);
    assert.deepEqual(ids, ['first:1', 'first:2', 'folder:1.jsonl:1', 'folder:2.jsonl:1']);
    assert.deepEqual(
      registryDatasetFiles(join(dir, 'dataset_info.json')).map((f) => f.split(/[\\/]/).slice(-2).join('/')),
      [`${dir.split(/[\\/]/).pop()}/a.jsonl`, 'parts/1.jsonl', 'parts/2.jsonl'],
    );
  });

  test('hub datasets are refused (no network), unknown names list the known ones', async () => {
    await assert.rejects(async () => {
      for await (const _ of readRegistryDatasets(`${LF}/dataset_info.json`, ['remote'])) void _;
    }, /not a local file/);
    await assert.rejects(
      async () => {
        for await (const _ of readRegistryDatasets(`${LF}/dataset_info.json`, ['nope'])) void _;
      },
      (e: unknown) => e instanceof LoomError && /support_alpaca/.test(e.hint ?? ''),
    );
  });

  test('writes a registry LLaMA-Factory reads back to the same rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-lf-'));
    const rows = [
      row({
        messages: [
          { role: 'system', content: 'S' },
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
        ],
      }),
    ];
    for (const fmt of ['messages', 'sharegpt', 'alpaca', 'openai'] as const) {
      writeFileSync(join(dir, `${fmt}.jsonl`), `${rows.map((r) => JSON.stringify(exportRow(r, fmt))).join('\n')}\n`);
      writeRegistry(dir, { [fmt]: registryEntryFor(`${fmt}.jsonl`, fmt) });
    }
    assert.deepEqual(Object.keys(readRegistry(join(dir, 'dataset_info.json'))).sort(), [
      'alpaca',
      'messages',
      'openai',
      'sharegpt',
    ]);
    for await (const it of readRegistryDatasets(join(dir, 'dataset_info.json'))) {
      assert.ok('row' in it, it.dataset);
      assert.deepEqual(it.row.messages, rows[0]!.messages, it.dataset);
    }
  });
});

describe('convert', () => {
  test('sharegpt → alpaca with a registry entry, and issues carry file:line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-conv-'));
    const input = join(dir, 'in.jsonl');
    writeFileSync(
      input,
      [
        JSON.stringify({
          conversations: [
            { from: 'human', value: 'q1' },
            { from: 'gpt', value: 'a1' },
          ],
        }),
        '{oops',
        JSON.stringify({
          conversations: [
            { from: 'human', value: 'q2' },
            { from: 'observation', value: 'o' },
            { from: 'gpt', value: 'a2' },
          ],
        }),
      ].join('\n'),
    );
    const out = join(dir, 'out', 'support.jsonl');
    const r = await convert({ input, output: out, from: 'sharegpt', to: 'alpaca', registryName: 'support' });
    assert.equal(r.read, 2);
    assert.equal(r.written, 1);
    assert.deepEqual(
      r.issues.map((i) => i.line),
      [2, 3],
    );
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), { instruction: 'q1', input: '', output: 'a1' });
    const reg = readRegistry(join(dir, 'out', 'dataset_info.json'));
    assert.equal(reg.support?.file_name, 'support.jsonl');
    await assert.rejects(
      convert({ input, output: join(dir, 'x.jsonl'), from: 'sharegpt', to: 'alpaca', strict: true }),
      (e: unknown) => e instanceof LoomError && e.line === 2,
    );
  });
});
