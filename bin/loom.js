#!/usr/bin/env node
// Runs the CLI compiled by scripts/build-cli.mjs (npm's `prepare`) when that build is exactly the current
// sources: every bundled file's size and mtime must match the build's manifest (a few ms of stat calls). After a
// source edit it rebuilds first (about a second, once); if building is impossible (esbuild missing, a syntax
// error mid-edit) it runs the sources through tsx, so stale compiled code never runs. LOOM_NO_BUILD=1 forces tsx.
import { readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

function currentBuild() {
  try {
    const { dir, inputs } = JSON.parse(readFileSync(new URL('dist/cli/current.json', root), 'utf8'));
    for (const [file, size, mtimeMs] of inputs) {
      const st = statSync(new URL(file, root));
      if (st.size !== size || st.mtimeMs !== mtimeMs) return undefined;
    }
    return new URL(`dist/cli/${dir}/main.js`, root);
  } catch {
    return undefined;
  }
}

let entry;
if (process.env.LOOM_NO_BUILD !== '1') {
  entry = currentBuild();
  if (!entry) {
    try {
      entry = await (await import('../scripts/build-cli.mjs')).buildCli();
    } catch {
      entry = undefined;
    }
  }
}
if (entry) {
  await import(entry.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
