/**
 * Is studio-dist/ still the build of the sources next to it? `npm install` builds the front end once; after a
 * `git pull` without it, `loom studio` would serve yesterday's pages. The vite build writes studio-dist/inputs.json
 * (studio-ui/build-manifest.mjs: every bundled source file with size, mtime and sha256); this compares it with the
 * files on disk (a stat per file, a hash only when a stat differs, so a checkout that rewrote a file unchanged costs
 * no rebuild) and, when they differ, rebuilds through vite's API (about two seconds) or, when that is impossible
 * (vite missing, a syntax error mid-edit), warns in English and Chinese with the command that fixes it and serves
 * the old build rather than none.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoomError } from '../core/errors.ts';

export interface BuildState {
  state: 'missing' | 'current' | 'stale';
  /** Source files (relative to the package root) that changed or vanished since the build. */
  changed: string[];
  /** Why it is stale when no file list can say so (a build from before manifests existed). */
  reason?: string;
}

/** The package root (where package.json, studio-ui/ and studio-dist/ live) and the build the server serves. */
export function defaultStudioBuild(): { root: string; dist: string } {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  return { root, dist: join(root, 'studio-dist') };
}

type Input = [path: string, size: number, mtimeMs: number, sha256: string];

export function studioBuildState(dist: string, root: string): BuildState {
  if (!existsSync(join(dist, 'index.html'))) return { state: 'missing', changed: [] };
  let inputs: Input[];
  try {
    inputs = (JSON.parse(readFileSync(join(dist, 'inputs.json'), 'utf8')) as { inputs: Input[] }).inputs;
    if (!Array.isArray(inputs) || inputs.length === 0) throw new Error('empty');
  } catch {
    return { state: 'stale', changed: [], reason: 'the build has no readable inputs.json (it predates this check)' };
  }
  const changed: string[] = [];
  for (const [file, size, mtimeMs, sha] of inputs) {
    const abs = join(root, file);
    try {
      const st = statSync(abs);
      if (st.size === size && st.mtimeMs === mtimeMs) continue;
      if (st.size === size && createHash('sha256').update(readFileSync(abs)).digest('hex') === sha) continue;
    } catch {}
    changed.push(file);
  }
  return { state: changed.length ? 'stale' : 'current', changed };
}

/** vite build with the Studio's config, quiet; throws when vite cannot be loaded or the build fails. */
async function viteBuild(root: string): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: join(root, 'studio-ui', 'vite.config.mjs'), logLevel: 'error' });
}

export interface EnsureOptions {
  dist: string;
  root: string;
  rebuild?: (root: string) => Promise<void>;
  /** Where progress and the warning go (stderr by default, so `listening on …` stays alone on stdout). */
  log?: (line: string) => void;
}

/**
 * Returns the folder to serve, rebuilding it first when its sources changed. A missing build that cannot be made
 * is an error (nothing to serve); a stale one that cannot be rebuilt is served with a warning.
 */
export async function ensureStudioBuild(o: EnsureOptions): Promise<string> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const rebuild = o.rebuild ?? viteBuild;
  const before = studioBuildState(o.dist, o.root);
  if (before.state === 'current') return o.dist;
  const what =
    before.state === 'missing'
      ? 'is not built'
      : `is older than its sources (${before.reason ?? before.changed.slice(0, 3).join(', ') + (before.changed.length > 3 ? ', …' : '')})`;
  log(`Studio front end ${what}; building it now / 前端构建已过期或缺失，正在重新构建…`);
  let error: string | undefined;
  try {
    await rebuild(o.root);
    const after = studioBuildState(o.dist, o.root);
    if (after.state !== 'current') error = `after the build it is still ${after.state} (${after.changed.join(', ')})`;
  } catch (e) {
    error = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);
  }
  if (!error) return o.dist;
  const fix = `run \`npm install\` (or \`npm run build:studio\`) in ${o.root}`;
  if (before.state === 'missing' || !existsSync(join(o.dist, 'index.html'))) {
    throw new LoomError('INPUT_NOT_FOUND', `the Studio front end is not built (${o.dist} is missing): ${error}`, {
      hint: `${fix} / 前端未构建：请在 ${o.root} 运行 npm install 或 npm run build:studio`,
    });
  }
  log(
    `warning: the Studio front end could not be rebuilt (${error}); serving the old build, which may not match this version. Fix: ${fix}\n` +
      `警告：前端无法重新构建，正在使用旧的构建，页面可能与当前版本不符。解决：在 ${o.root} 运行 npm install 或 npm run build:studio`,
  );
  return o.dist;
}
