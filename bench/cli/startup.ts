// CLI start-up time, one JSON line per case: bare node (the floor), the compiled CLI (bin/loom.js with a current
// dist build) and the same bin running the sources through tsx (LOOM_NO_BUILD=1, what every start cost before).
// Usage: npx tsx bench/cli/startup.ts [--runs 7] [--before /path/to/old/bin/loom.js]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, before: { type: 'string' } } });
const runs = Number.parseInt(values.runs ?? '7', 10);
const bin = resolve(import.meta.dirname, '../../bin/loom.js');
const hyp = join(tmpdir(), 'loom-startup-hyp.txt');
writeFileSync(hyp, 'the cat sat on the mat\n');
const metric = ['eval', 'metric', 'bleu', '--hyp', hyp, '--ref', hyp];

function time(label: string, args: string[], env: Record<string, string> = {}): void {
  const ms: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const dt = performance.now() - t;
    if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr}`);
    if (i > 0) ms.push(dt); // the first run warms the page cache (and builds, if the build was stale)
  }
  ms.sort((a, b) => a - b);
  const s = (x: number) => Math.round(x) / 1000;
  process.stdout.write(
    `${JSON.stringify({ case: label, runs, median_s: s(ms[Math.floor(ms.length / 2)]!), min_s: s(ms[0]!), max_s: s(ms.at(-1)!) })}\n`,
  );
}

time('node -e 0', ['-e', '0']);
time('loom --help (compiled)', [bin, '--help']);
time('loom eval metric bleu (compiled)', [bin, ...metric]);
time('loom --help (tsx, LOOM_NO_BUILD=1)', [bin, '--help'], { LOOM_NO_BUILD: '1' });
time('loom eval metric bleu (tsx, LOOM_NO_BUILD=1)', [bin, ...metric], { LOOM_NO_BUILD: '1' });
if (values.before) {
  time('loom --help (before)', [values.before, '--help']);
  time('loom eval metric bleu (before)', [values.before, ...metric]);
}
