import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const REPO = resolve(import.meta.dirname, '../..');

function loom(dir: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [join(dir, 'bin/loom.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
}

function buildDir(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'dist/cli/current.json'), 'utf8')) as { dir: string }).dir;
}

test('bin/loom.js builds once, reuses the build, and rebuilds after a source edit (never runs stale code)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-startup-'));
  try {
    for (const p of ['bin', 'scripts', 'src', 'package.json']) cpSync(join(REPO, p), join(dir, p), { recursive: true });
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));

    const first = loom(dir, ['--help']);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /raw business text/);
    const built = buildDir(dir);

    const again = loom(dir, ['--version']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(buildDir(dir), built, 'an unchanged tree reuses its build');

    const main = join(dir, 'src/cli/main.ts');
    writeFileSync(
      main,
      readFileSync(main, 'utf8').replace('Loom: raw business text', 'Loom EDITED: raw business text'),
    );
    const edited = loom(dir, ['--help']);
    assert.equal(edited.status, 0, edited.stderr);
    assert.match(edited.stdout, /Loom EDITED: raw business text/);
    assert.notEqual(buildDir(dir), built, 'the edit produced a new build');

    // A syntax error mid-edit cannot be built: the sources run through tsx, which reports the real error.
    writeFileSync(main, `${readFileSync(main, 'utf8')}\nconst = ;\n`);
    const broken = loom(dir, ['--help']);
    assert.notEqual(broken.status, 0);
    assert.doesNotMatch(broken.stdout, /Loom EDITED/);

    const forced = loom(dir, ['--version'], { LOOM_NO_BUILD: '1' });
    assert.notEqual(forced.status, 0, 'LOOM_NO_BUILD=1 runs the (broken) sources, not the last build');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
