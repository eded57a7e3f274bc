// Monitoring gaps: GPU gauges from nvidia-smi (absent here: no loom_gpu_* series; a fake nvidia-smi on PATH proves
// the parsing, the labels and that a failing query drops the series), the native-memory gauge, and the
// `loom serve --dry-run` memory estimate checked against the KV-cache formula computed here from config numbers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServe } from '../../src/cli/serve.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { parseNvidiaSmi } from '../../src/monitor/gpu.ts';
import { ServeMetrics } from '../../src/monitor/metrics.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let work: string;
let dir: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'loom-serve-mon-'));
  dir = join(work, 'tiny');
  createModelFolder(dir, { preset: 'tiny', seed: 5 });
});
after(() => rmSync(work, { recursive: true, force: true }));

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('no nvidia-smi: no loom_gpu_* series at all (absence is not an idle GPU)', async () => {
  const m = new ServeMetrics({ nvidiaSmi: join(work, 'no-such-nvidia-smi') });
  assert.equal(m.gpu, false);
  assert.doesNotMatch(await m.text(), /loom_gpu_/);
  if (spawnSync('nvidia-smi', ['-L']).status !== 0) {
    const d = new ServeMetrics();
    assert.equal(d.gpu, false);
    assert.doesNotMatch(await d.text(), /loom_gpu_/);
  }
});

test('a fake nvidia-smi: gauges per GPU with index/name labels; a failing query removes the series', async () => {
  const fake = join(work, 'nvidia-smi');
  const flag = join(work, 'gpu-broken');
  writeFileSync(
    fake,
    `#!/bin/sh\n[ -e ${JSON.stringify(flag)} ] && { echo "NVIDIA-SMI has failed" >&2; exit 9; }\necho "0, Fake H100, 37, 1024, 81559"\necho "1, Fake H100, 0, 3, 81559"\n`,
  );
  chmodSync(fake, 0o755);
  const m = new ServeMetrics({ nvidiaSmi: fake });
  assert.equal(m.gpu, true);
  const text = await m.text();
  assert.equal(value(text, 'loom_gpu_utilization_ratio{gpu="0",name="Fake H100"}'), 0.37);
  assert.equal(value(text, 'loom_gpu_memory_used_bytes{gpu="0",name="Fake H100"}'), 1024 * 1048576);
  assert.equal(value(text, 'loom_gpu_memory_used_bytes{gpu="1",name="Fake H100"}'), 3 * 1048576);
  assert.equal(value(text, 'loom_gpu_memory_total_bytes{gpu="1",name="Fake H100"}'), 81559 * 1048576);
  // The real Prometheus linter accepts the scrape with the GPU and memory gauges (ops.test.ts installs promtool).
  if (spawnSync('promtool', ['--version']).status === 0) {
    const pt = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(pt.status, 0, `${pt.stdout}${pt.stderr}`);
  }
  writeFileSync(flag, '');
  // The cached sample is at most 2 s old; a fresh gauge set with no cache shows the failure at once.
  const broken = new ServeMetrics({ nvidiaSmi: fake });
  assert.equal(broken.gpu, false);
  rmSync(flag);
  assert.deepEqual(parseNvidiaSmi('garbage\n0, X, N/A, 1, 2\n2, Y, 5, 6, 7'), [
    { index: '2', name: 'Y', utilization: 0.05, memoryUsedBytes: 6 * 1048576, memoryTotalBytes: 7 * 1048576 },
  ]);
});

test('loom_native_memory_bytes is RSS minus the main V8 heap; model memory gauges match the dry-run estimate', async () => {
  // Independent KV formula from the tiny preset's numbers: 2 (K and V) x layers x kv heads x head dim x fp32 bytes
  // per token, x min(max_position_embeddings, 4096) tokens, x concurrency sequences.
  const layers = 2;
  const kvHeads = 2;
  const headDim = 64 / 4;
  const context = 1024;
  const concurrency = 3;
  const kv = 2 * layers * kvHeads * headDim * 4 * context * concurrency;
  const weights = statSync(join(dir, 'model.safetensors')).size;
  const s = await startServe(dir, {
    registry: join(work, 'registry.db'),
    port: 0,
    logLevel: 'silent',
    requestLog: false,
    overrides: [`models.0.concurrency=${concurrency}`],
  });
  try {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const native = value(text, 'loom_native_memory_bytes')!;
    const rss = value(text, 'loom_process_resident_memory_bytes')!;
    assert.ok(native > 0 && native < rss, `native ${native}, rss ${rss}`);
    assert.equal(value(text, 'loom_model_memory_estimate_bytes{model="tiny",part="weights"}'), weights);
    assert.equal(value(text, 'loom_model_memory_estimate_bytes{model="tiny",part="kv_cache"}'), kv);
  } finally {
    await s.close();
  }
  const cli = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'serve',
      dir,
      '--dry-run',
      `models.0.concurrency=${concurrency}`,
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(cli.status, 0, cli.stderr);
  const mib = (b: number) => (b / 1048576).toFixed(1);
  assert.match(
    cli.stdout,
    new RegExp(
      `^tiny\\t${mib(weights)} MiB weights \\+ ${mib(kv)} MiB KV cache \\(3 seq x 1024 tokens\\) = ${mib(weights + kv)} MiB\\n`,
    ),
  );
  assert.match(cli.stdout, /^total\t/m);
});
