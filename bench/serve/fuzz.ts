/**
 * 10,000 fuzzed requests (tools/fuzz/serve-fuzz.ts) against a real `loom serve` process (the CLI, a tiny model
 * with one adapter), 8 in flight: zero invariant violations, zero internal_error 500s, the process still alive and
 * answering /health afterwards. Prints one JSON line (requests, seconds, statuses, RSS before/after).
 * Usage: npx tsx bench/serve/fuzz.ts [requests=10000] [parallel=8]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModelFolder } from '../../src/models/folder.ts';
import { runServeFuzz } from '../../tools/fuzz/serve-fuzz.ts';

const N = Number(process.argv[2] ?? 10_000);
const PARALLEL = Number(process.argv[3] ?? 8);
const ROOT = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'loom-bench-fuzz-'));
const MAX_BODY = 16384;
createModelFolder(join(work, 'tiny'), { preset: 'tiny', seed: 5, overrides: { initializer_range: 0.2 } });
createModelFolder(join(work, 'other'), { preset: 'tiny', seed: 6, overrides: { initializer_range: 0.2 } });
const cfg = join(work, 'serve.yaml');
writeFileSync(
  cfg,
  [
    `limits: { max_body_bytes: ${MAX_BODY}, max_tokens: 16, queue: 64 }`,
    'request_log: { enabled: false }',
    'models:',
    '  - { name: tiny, backend: local, path: tiny, threads: 1, adapters: { lora: other } }',
  ].join('\n'),
);
const child = spawn(
  process.execPath,
  ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', cfg, '--port', '0', '--log-level', 'silent'],
  { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOOM_REGISTRY: join(work, 'r.db') } },
);
let exited: number | null = null;
child.on('exit', (code) => {
  exited = code ?? -1;
});
const rss = async (url: string) => {
  const m = /^loom_process_resident_memory_bytes (\d+)/m.exec(await (await fetch(`${url}/metrics`)).text());
  return m ? Math.round(Number(m[1]) / 1048576) : null;
};
try {
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', () => reject(new Error(`loom serve exited before listening: ${out}`)));
  });
  const rssBefore = await rss(url);
  const rep = await runServeFuzz({
    url,
    model: 'tiny',
    count: N,
    seed: 2026,
    parallel: PARALLEL,
    maxBodyBytes: MAX_BODY,
  });
  const health = (await fetch(`${url}/health`)).status;
  console.log(
    JSON.stringify({
      bench: 'serve.fuzz',
      requests: rep.requests,
      parallel: PARALLEL,
      seconds: +rep.seconds.toFixed(1),
      violations: rep.violations.length,
      internal_errors: rep.internalErrors,
      process_alive: exited === null,
      health_after: health,
      rss_mb_before: rssBefore,
      rss_mb_after: await rss(url),
      by_status: rep.byStatus,
      by_kind: rep.byKind,
    }),
  );
  for (const v of rep.violations) console.error(`violation: ${v}`);
  if (rep.violations.length || rep.internalErrors || exited !== null || health !== 200) process.exitCode = 1;
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r).once('error', r));
  rmSync(work, { recursive: true, force: true });
}
