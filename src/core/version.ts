import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** Loom's version from package.json (the one place it is written): stamped on runs, reports and exported models. */
export function loomVersion(): string {
  if (cached !== undefined) return cached;
  try {
    cached = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    cached = 'unknown';
  }
  return cached;
}
