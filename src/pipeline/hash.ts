import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Content hashes for pipeline inputs and outputs. A folder hashes as the sorted list of its files' relative paths
 * and contents, so renaming or editing any file inside changes it, and mtimes (touched by a checkout) never do.
 * A missing path hashes to the fixed string "missing" so that "it appeared" and "it vanished" are changes too.
 */
export function hashPath(path: string): string {
  if (!existsSync(path)) return 'missing';
  const h = createHash('sha256');
  const st = statSync(path);
  if (st.isFile()) {
    h.update(readFileSync(path));
    return h.digest('hex');
  }
  for (const f of listFiles(path)) {
    h.update(relative(path, f));
    h.update('\0');
    h.update(readFileSync(f));
    h.update('\0');
  }
  return h.digest('hex');
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export function hashString(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
