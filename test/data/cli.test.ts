import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { runDataPipeline } from '../../src/data/pipeline.ts';

const LOOM = resolve('bin/loom.js');
const FIX = 'test/fixtures/data/pipeline';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function loom(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Ran> } {
  const child = spawn(process.execPath, [LOOM, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<Ran>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  return { child, done };
}

function fixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'loom-cli-'));
  cpSync(FIX, dir, { recursive: true });
  return dir;
}

const FINAL = [
  'train.jsonl',
  'validation.jsonl',
  'test.jsonl',
  'rejects.jsonl',
  'report.json',
  'report.html',
  'DONE.json',
];

describe('loom data run: a killed job leaves no final outputs; a rerun equals a clean run', () => {
  test('SIGKILL mid-run, then rerun', async () => {
    const dir = fixture();
    const config = join(dir, 'data.yaml');
    // Clean reference run into another folder (in-process: the CLI is a thin shell over this).
    await runDataPipeline(config, { outDir: join(dir, 'clean'), quiet: true });
    // First a finished run, so there are old outputs a crash could leave half-replaced.
    await runDataPipeline(config, { quiet: true });
    // Slowed run (LOOM_DATA_DELAY_MS per input row), killed once it is reading rows.
    const slow = loom(['data', 'run', config, '--force'], { LOOM_DATA_DELAY_MS: '150' });
    await new Promise<void>((res) => {
      slow.child.stderr!.on('data', (d: Buffer) => {
        if (d.toString().includes('"progress"')) res();
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    slow.child.kill('SIGKILL');
    const killed = await slow.done;
    assert.equal(killed.code, null);
    const out = join(dir, 'out');
    for (const f of FINAL) assert.ok(!existsSync(join(out, f)), `${f} must not exist after a kill`);

    const rerun = await loom(['data', 'run', config, '--json']).done;
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(JSON.parse(rerun.stdout).status, 'done');
    for (const f of ['train.jsonl', 'validation.jsonl', 'test.jsonl', 'rejects.jsonl']) {
      assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(dir, 'clean', f), 'utf8'), f);
    }
    // No temp files of the killed run survive the rerun.
    assert.deepEqual(
      readdirSync(out).filter((n) => n.includes('.tmp')),
      [],
    );
  });
});

describe('loom data CLI', () => {
  test('lint exits 1 with file:line findings', async () => {
    const r = await loom(['data', 'lint', 'test/fixtures/data/lint/intents.jsonl', '--labels', 'card_arrival,refund'])
      .done;
    assert.equal(r.code, 1);
    assert.match(r.stdout, /intents\.jsonl:2: label "refnd" is not in the label set/);
  });

  test('errors are LoomErrors with exit code 2 (bad config value from an override)', async () => {
    const dir = fixture();
    const bad = await loom(['data', 'run', join(dir, 'data.yaml'), 'output.format=chatml']).done;
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error\[CONFIG_INVALID\].*output\.format/);
  });

  test('convert a LLaMA-Factory registry dataset to OpenAI JSONL and register it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-cli-conv-'));
    const out = join(dir, 'openai.jsonl');
    const r = await loom([
      'data',
      'convert',
      'test/fixtures/data/llamafactory/dataset_info.json',
      '--datasets',
      'support_alpaca',
      '--to',
      'openai',
      '-o',
      out,
      '--register',
      'support',
    ]).done;
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.deepEqual(lines[1], {
      messages: [
        { role: 'user', content: 'Where is my parcel?' },
        { role: 'assistant', content: 'Open My Orders and tap Track.' },
      ],
    });
    assert.equal(JSON.parse(readFileSync(join(dir, 'dataset_info.json'), 'utf8')).support.formatting, 'sharegpt');
  });
});

describe('loom data run: zero rows written', () => {
  test('exits non-zero and names the top drop reasons; the rejects stay for inspection', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-cli-zero-'));
    writeFileSync(join(dir, 'in.jsonl'), '{"text":"hello there"}\n{"text":"second row"}\n');
    writeFileSync(
      join(dir, 'data.yaml'),
      'inputs:\n  - path: in.jsonl\n    formatting: text\noutput:\n  format: messages\nout_dir: out\n',
    );
    const r = await loom(['data', 'run', join(dir, 'data.yaml'), '--quiet']).done;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /2 rows read, 0 written/);
    assert.match(r.stderr, /top reasons: format:/);
    assert.ok(existsSync(join(dir, 'out', 'rejects.jsonl')));
  });
});

describe('loom data run: empty input files', () => {
  test('an empty input file is warned about on stderr (also with --quiet); the other inputs still run, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-cli-empty-'));
    writeFileSync(join(dir, 'empty.jsonl'), '');
    writeFileSync(join(dir, 'ok.jsonl'), '{"text":"hello there"}\n');
    writeFileSync(
      join(dir, 'data.yaml'),
      'inputs:\n  - path: empty.jsonl\n    formatting: text\n  - path: ok.jsonl\n    formatting: text\noutput:\n  format: text\nsplit: false\nout_dir: out\n',
    );
    const r = await loom(['data', 'run', join(dir, 'data.yaml'), '--quiet']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: input empty\.jsonl is empty \(0 bytes\)/);
    assert.match(r.stdout, /1 rows read → 1 written/);
  });
});
