// Builds the Studio front end into studio-dist/ (run by `npm install` through `prepare`, and by `loom studio` when
// the sources changed since: src/studio/build.ts). base './' keeps every URL relative to the page's <base>, which
// the server sets, so one build serves at / and at /studio/.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { buildManifest } from './build-manifest.mjs';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  plugins: [buildManifest(fileURLToPath(new URL('..', import.meta.url)).replace(/[\\/]$/, ''), fileURLToPath(import.meta.url))],
  build: {
    outDir: fileURLToPath(new URL('../studio-dist', import.meta.url)),
    emptyOutDir: true,
    // One small bundle, no source maps: the folder is rebuilt on every install.
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
});
