// A vite plugin that writes studio-dist/inputs.json: every source file in the bundle (the pages, the shared
// dictionaries in src/studio/i18n.ts, the CSS, this config) with its size, mtime and sha256, so `loom studio` can
// tell that a `git pull` changed the sources since the last build (src/studio/build.ts), as bin/loom.js does for the CLI.
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export function buildManifest(root, configFile) {
  let outDir = '';
  return {
    name: 'loom-build-manifest',
    configResolved(c) {
      outDir = c.build.outDir;
    },
    writeBundle() {
      const ids = [...this.getModuleIds(), configFile, fileURLToPath(import.meta.url)].filter(
        (id) => !id.startsWith('\0') && !id.includes(`${sep}node_modules${sep}`) && id.startsWith(root + sep),
      );
      const files = [...new Set(ids.map((id) => id.split('?')[0]))].sort();
      const inputs = files.map((abs) => {
        const st = statSync(abs);
        const sha = createHash('sha256').update(readFileSync(abs)).digest('hex');
        return [relative(root, abs).split(sep).join('/'), st.size, st.mtimeMs, sha];
      });
      writeFileSync(join(outDir, 'inputs.json'), `${JSON.stringify({ inputs }, null, 1)}\n`);
    },
  };
}
