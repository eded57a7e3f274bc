/**
 * Input expansion: `expandInputs(patterns, { baseDir })` turns files, directories and globs into a sorted,
 * de-duplicated list of absolute file paths. Node 20 has no `fs.glob`, so this is a tiny glob of our own:
 * `*` and `?` (not crossing `/`), `**` (any number of folders), `{a,b}` alternatives and `[abc]` classes.
 * A directory expands to every file below it whose extension Loom can read (hidden files are skipped).
 * Patterns keep their order; the matches of one pattern are sorted, so row order and `--shard i/N` assignment
 * are deterministic across machines.
 */
import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { LoomError } from '../../core/errors.ts';

/** Extensions (after removing `.gz` / `.zst`) that a directory expansion picks up. */
const READABLE_EXTENSIONS = [
  '.jsonl',
  '.ndjson',
  '.json',
  '.csv',
  '.tsv',
  '.parquet',
  '.txt',
  '.md',
  '.markdown',
  '.html',
  '.htm',
];

function isReadableName(name: string): boolean {
  const base = name.toLowerCase().replace(/\.(gz|zst)$/, '');
  return READABLE_EXTENSIONS.some((e) => base.endsWith(e));
}

const GLOB_CHARS = /[*?[{]/;

/** Compiles one glob (relative, `/`-separated) to an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let i = 0;
  let braces = 0;
  while (i < glob.length) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more whole folders; a trailing `**` matches everything below.
        if (glob[i + 2] === '/') {
          re += '(?:[^/]*/)*';
          i += 3;
        } else {
          re += '.*';
          i += 2;
        }
        continue;
      }
      re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body}]`;
        i = end;
      }
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else re += c.replace(/[.+^$()|\\/]/g, '\\$&');
    i++;
  }
  return new RegExp(`^${re}$`);
}

function walk(dir: string, out: string[], filter: (abs: string, rel: string) => boolean, root: string): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const abs = join(dir, name);
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(abs);
    } catch {
      continue;
    }
    if (st.isDirectory()) walk(abs, out, filter, root);
    else if (st.isFile() && filter(abs, relative(root, abs).split(sep).join('/'))) out.push(abs);
  }
}

export interface ExpandOptions {
  /** Folder that relative patterns resolve against (the config file's folder); default: cwd. */
  baseDir?: string;
}

/** Expands files, directories and globs; throws INPUT_NOT_FOUND for a pattern that matches nothing. */
export function expandInputs(patterns: readonly string[], opts: ExpandOptions = {}): string[] {
  const base = resolve(opts.baseDir ?? process.cwd());
  const found = new Set<string>();
  for (const pattern of patterns) {
    const norm = pattern.split(sep).join('/');
    const matches: string[] = [];
    if (!GLOB_CHARS.test(norm)) {
      const abs = isAbsolute(norm) ? norm : resolve(base, norm);
      let st: ReturnType<typeof statSync> | undefined;
      try {
        st = statSync(abs);
      } catch {
        st = undefined;
      }
      if (st?.isDirectory()) walk(abs, matches, (a) => isReadableName(a), abs);
      else if (st?.isFile()) matches.push(abs);
    } else {
      // Walk from the longest folder prefix without glob characters.
      const parts = norm.split('/');
      const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
      const prefix = parts.slice(0, firstGlob).join('/');
      const root =
        prefix === '' ? (norm.startsWith('/') ? '/' : base) : isAbsolute(prefix) ? prefix : resolve(base, prefix);
      const re = globToRegExp(parts.slice(firstGlob).join('/'));
      walk(root, matches, (_a, rel) => re.test(rel), root);
    }
    if (matches.length === 0) {
      throw new LoomError('INPUT_NOT_FOUND', `no input files match "${pattern}"`, {
        file: pattern,
        hint: `patterns resolve against ${base}; check the path or the glob (supported: * ? ** {a,b} [abc])`,
      });
    }
    for (const m of matches.sort()) found.add(m);
  }
  return [...found];
}
