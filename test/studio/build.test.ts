import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isLoomError } from '../../src/core/errors.ts';
import { defaultStudioBuild, ensureStudioBuild, studioBuildState } from '../../src/studio/build.ts';

const tmp = mkdtempSync(join(tmpdir(), 'loom-studio-build-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A package root with one page source and a build of it whose manifest is written like the vite plugin's. */
function fakePackage(name: string): { root: string; dist: string; page: string; build: () => Promise<void> } {
  const root = join(tmp, name);
  const dist = join(root, 'studio-dist');
  const page = join(root, 'studio-ui', 'main.tsx');
  mkdirSync(join(root, 'studio-ui'), { recursive: true });
  writeFileSync(page, 'export const v = 1;\n');
  const build = async () => {
    mkdirSync(dist, { recursive: true });
    writeFileSync(join(dist, 'index.html'), `<!-- built from ${readFileSync(page, 'utf8').trim()} -->`);
    const st = statSync(page);
    const sha = createHash('sha256').update(readFileSync(page)).digest('hex');
    writeFileSync(
      join(dist, 'inputs.json'),
      JSON.stringify({ inputs: [['studio-ui/main.tsx', st.size, st.mtimeMs, sha]] }),
    );
  };
  return { root, dist, page, build };
}

test('the real build records its sources, and matches them (run `npm run build:studio` first)', () => {
  const { root, dist } = defaultStudioBuild();
  const inputs = (JSON.parse(readFileSync(join(dist, 'inputs.json'), 'utf8')) as { inputs: [string][] }).inputs.map(
    (i) => i[0],
  );
  for (const f of ['studio-ui/main.tsx', 'studio-ui/pages/lineage.tsx', 'src/studio/i18n.ts', 'studio-ui/style.css'])
    assert.ok(inputs.includes(f), `${f} is listed in studio-dist/inputs.json`);
  assert.ok(!inputs.some((f) => f.includes('node_modules')), 'dependencies are not sources');
  assert.deepEqual(studioBuildState(dist, root), { state: 'current', changed: [] });
});

test('a source edited after the build makes it stale; loom studio rebuilds it once, then it is current', async () => {
  const p = fakePackage('rebuild');
  await p.build();
  assert.equal(studioBuildState(p.dist, p.root).state, 'current');
  // the same bytes rewritten (a checkout that touched the file) is not a change
  utimesSync(p.page, new Date(), new Date(Date.now() + 5000));
  assert.equal(studioBuildState(p.dist, p.root).state, 'current');
  writeFileSync(p.page, 'export const v = 22;\n');
  assert.deepEqual(studioBuildState(p.dist, p.root), { state: 'stale', changed: ['studio-ui/main.tsx'] });
  const lines: string[] = [];
  let builds = 0;
  const rebuild = () => {
    builds++;
    return p.build();
  };
  const dist = await ensureStudioBuild({ ...p, rebuild, log: (l) => lines.push(l) });
  assert.equal(dist, p.dist);
  assert.equal(builds, 1);
  assert.match(readFileSync(join(p.dist, 'index.html'), 'utf8'), /v = 22/, 'the new source was built');
  assert.match(lines.join('\n'), /older than its sources \(studio-ui\/main\.tsx\)/);
  // current now: nothing to do, nothing printed
  lines.length = 0;
  await ensureStudioBuild({ ...p, rebuild, log: (l) => lines.push(l) });
  assert.equal(builds, 1);
  assert.deepEqual(lines, []);
});

test('a build from before the manifest existed counts as stale', async () => {
  const p = fakePackage('old');
  await p.build();
  rmSync(join(p.dist, 'inputs.json'));
  assert.equal(studioBuildState(p.dist, p.root).state, 'stale');
});

test('when the build tools are unavailable: a stale build is served with a warning in both languages naming the fix', async () => {
  const p = fakePackage('notools');
  await p.build();
  writeFileSync(p.page, 'export const v = 3;\n');
  const lines: string[] = [];
  const dist = await ensureStudioBuild({
    ...p,
    rebuild: async () => {
      throw new Error("Cannot find package 'vite'");
    },
    log: (l) => lines.push(l),
  });
  assert.equal(dist, p.dist, 'the old build is still served');
  const out = lines.join('\n');
  assert.match(out, /could not be rebuilt \(Cannot find package 'vite'\); serving the old build/);
  assert.match(out, /npm install.*npm run build:studio/);
  assert.match(out, /警告：前端无法重新构建/);
  assert.match(out, /\/ 前端构建已过期或缺失/);
});

test('a missing build that cannot be made is an error with the fix, not a server with no pages', async () => {
  const p = fakePackage('missing');
  await assert.rejects(
    ensureStudioBuild({
      ...p,
      rebuild: async () => {
        throw new Error('no vite');
      },
      log: () => {},
    }),
    (e: unknown) => isLoomError(e) && /not built/.test(e.message) && /npm run build:studio/.test(e.hint ?? ''),
  );
});
