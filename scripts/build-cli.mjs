#!/usr/bin/env node
// Compiles the CLI once (npm's `prepare` step, and bin/loom.js when the sources changed since) into
// dist/cli/<content hash>/, so `loom` starts without transpiling TypeScript on every run. Usage:
//   node scripts/build-cli.mjs          # what `npm install` runs; prints the build folder
// dist/cli/current.json names the build and every source file it was made from, with size and mtime, so
// bin/loom.js can tell in a few milliseconds whether the build is still the sources' (and never runs it if not).
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'dist', 'cli');
const STALE_BUILD_MS = 24 * 3600 * 1000;

/**
 * Modules find their neighbours (the engine worker, tokenizer assets, examples, package.json) through
 * `import.meta.url`; in one bundle that would be the bundle's URL, so each source file keeps its own: the
 * expression becomes the source file's URL, computed relative to the bundle so a moved checkout still works.
 */
function keepOwnUrl(outDir) {
  return {
    name: 'loom-own-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        const rel = relative(outDir, args.path).split('\\').join('/');
        const own = `new URL(${JSON.stringify(rel)}, import.meta.url).href`;
        return { contents: text.replaceAll('import.meta.url', own), loader: 'ts' };
      });
    },
  };
}

/** Builds (unless a build of exactly these sources exists) and returns the file URL of its entry point. */
export async function buildCli({ quiet = true } = {}) {
  const esbuild = await import('esbuild');
  mkdirSync(OUT, { recursive: true });
  const tmp = join(OUT, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const result = await esbuild.build({
      entryPoints: [join(ROOT, 'src/cli/main.ts')],
      absWorkingDir: ROOT,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      outdir: tmp,
      metafile: true,
      logLevel: quiet ? 'silent' : 'warning',
      plugins: [keepOwnUrl(tmp)],
    });
    const files = Object.keys(result.metafile.inputs).sort();
    const hash = createHash('sha256');
    const inputs = files.map((f) => {
      const abs = join(ROOT, f);
      const st = statSync(abs);
      hash.update(f).update('\0').update(readFileSync(abs)).update('\0');
      return [f, st.size, st.mtimeMs];
    });
    const dir = hash.digest('hex').slice(0, 16);
    const final = join(OUT, dir);
    try {
      renameSync(tmp, final);
    } catch {
      // Another process built the same sources at the same moment: its copy is identical, keep that one.
      rmSync(tmp, { recursive: true, force: true });
    }
    const manifest = join(OUT, `.current-${process.pid}.json`);
    writeFileSync(manifest, `${JSON.stringify({ dir, inputs })}\n`);
    renameSync(manifest, join(OUT, 'current.json'));
    pruneOld(dir);
    return pathToFileURL(join(final, 'main.js'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Old builds may still serve a long-running `loom serve` (chunks load lazily), so only day-old ones go. */
function pruneOld(keep) {
  for (const name of readdirSync(OUT)) {
    if (name === keep || name === 'current.json') continue;
    const p = join(OUT, name);
    try {
      if (Date.now() - statSync(p).mtimeMs > STALE_BUILD_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // Gone already (a concurrent prune): nothing to do.
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entry = await buildCli({ quiet: false });
  process.stdout.write(`loom CLI built: ${relative(ROOT, fileURLToPath(entry))}\n`);
}
