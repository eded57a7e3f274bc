import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findStop, heldSuffixLength, StopStrings } from '../../src/generate/stop.ts';
import { StreamDecoder, TextStream } from '../../src/generate/stream.ts';
import { fixtureTokenizer, sentencepieceToyTokenizer } from '../tokenizer/fixtures.ts';

test('stop strings across token boundaries: held back, then cut before the stop', () => {
  const s = new StopStrings(['###', '\nUser:']);
  assert.deepEqual(s.push('Hello #'), { text: 'Hello ', stopped: false });
  assert.deepEqual(s.push('#'), { text: '', stopped: false });
  assert.deepEqual(s.push('# world'), { text: '', stopped: true });
  assert.deepEqual(s.push('more'), { text: '', stopped: true });

  const t = new StopStrings(['\nUser:']);
  assert.deepEqual(t.push('Fine.\nUs'), { text: 'Fine.', stopped: false });
  assert.deepEqual(t.push('ually yes'), { text: '\nUsually yes', stopped: false });
  assert.deepEqual(t.push('\n'), { text: '', stopped: false });
  assert.equal(t.flush(), '\n');
});

test('findStop picks the earliest stop; heldSuffixLength is the longest partial match', () => {
  assert.deepEqual(findStop('a STOP b END', ['END', 'STOP']), { index: 2, stop: 'STOP' });
  assert.equal(findStop('abc', ['x']), null);
  assert.equal(heldSuffixLength('abcEN', ['END']), 2);
  assert.equal(heldSuffixLength('abc', ['END']), 0);
  assert.equal(heldSuffixLength('aaa', ['aab']), 2);
});

const TEXTS = ['Hello 👋🏽 world — 你好，世界 🇯🇵!', 'émoji 😀😀 and ∑ ≠ ∞', '日本語のテキスト'];

test('StreamDecoder never emits a broken character and reproduces decode()', async () => {
  for (const name of ['qwen3', 'llama3'] as const) {
    const tok = fixtureTokenizer(name);
    let waited = false;
    for (const text of TEXTS) {
      const ids = await tok.encode(text);
      const d = new StreamDecoder(tok);
      const chunks = ids.map((id) => d.push(id));
      chunks.push(d.flush());
      assert.ok(
        chunks.every((c) => !c.includes('\uFFFD')),
        `${name}: ${JSON.stringify(chunks)}`,
      );
      assert.equal(chunks.join(''), await tok.decode(ids));
      if (chunks.slice(0, -1).includes('')) waited = true;
    }
    // Byte-level tokens split some characters (flags, skin tones), so some push waited for the rest of one.
    assert.ok(waited, name);
  }
});

test('TextStream: EOS ends the stream; special tokens are not shown; stop strings cut', async () => {
  const tok = fixtureTokenizer('qwen3');
  const ids = [...(await tok.encode('Sure! Here it is.')), 151645, ...(await tok.encode(' ignored'))];
  const s = new TextStream(tok);
  let out = '';
  let reason: string | undefined;
  for (const id of ids) {
    const e = s.push(id);
    out += e.text;
    if (e.stopped) {
      reason = e.reason;
      break;
    }
  }
  assert.equal(out, 'Sure! Here it is.');
  assert.equal(reason, 'eos');

  const s2 = new TextStream(tok, { stop: ['it is'] });
  out = '';
  for (const id of ids) {
    const e = s2.push(id);
    out += e.text;
    if (e.stopped) {
      reason = e.reason;
      break;
    }
  }
  assert.equal(out, 'Sure! Here ');
  assert.equal(reason, 'stop');

  const s3 = new TextStream(tok, { stop: ['is.x'] });
  out = '';
  for (const id of await tok.encode('This is.')) out += s3.push(id).text;
  assert.equal(out, 'This ');
  assert.equal(out + s3.finish(), 'This is.');
});

test('sentencepiece vocabularies: byte-fallback tokens stream whole characters, leading space dropped', async () => {
  const tok = sentencepieceToyTokenizer();
  const ids = await tok.encode('hello world 😀你', { addSpecialTokens: true });
  assert.equal(ids[0], 1); // <s> from the post-processor
  // The emoji is not in the vocabulary: four <0xNN> byte tokens (F0 9F 98 80).
  assert.deepEqual(
    ids.filter((i) => i >= 3 && i < 259).map((i) => i - 3),
    [0xf0, 0x9f, 0x98, 0x80],
  );
  const d = new StreamDecoder(tok);
  const chunks = ids.map((id) => d.push(id));
  chunks.push(d.flush());
  assert.ok(chunks.every((c) => !c.includes('\uFFFD')));
  assert.equal(chunks.join(''), await tok.decode(ids, { skipSpecialTokens: true }));
  assert.equal(chunks.join(''), 'hello world 😀你');
});
