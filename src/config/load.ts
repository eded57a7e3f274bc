import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { LoomError } from '../core/errors.ts';
import { closest } from '../core/nearest.ts';

export type Plain = Record<string, unknown>;

/**
 * Applies `key=value` overrides (dotted keys reach into nested objects, values are parsed as YAML
 * scalars/flow so `lr=1e-4`, `flag=true`, `targets=[q_proj,v_proj]` all do what users expect).
 */
export function applyOverrides(base: Plain, overrides: readonly string[]): Plain {
  const out: Plain = structuredClone(base);
  for (const ov of overrides) {
    const eq = ov.indexOf('=');
    if (eq <= 0) {
      throw new LoomError('OVERRIDE_INVALID', `override "${ov}" is not key=value`, {
        hint: 'write overrides as key=value, e.g. learning_rate=2e-4 or data.split.seed=7',
      });
    }
    const key = ov.slice(0, eq).trim();
    const raw = ov.slice(eq + 1);
    let value: unknown;
    try {
      value = raw === '' ? '' : parseYaml(raw);
    } catch {
      value = raw;
    }
    const parts = key.split('.');
    let node: Plain = out;
    for (const p of parts.slice(0, -1)) {
      const next = node[p];
      if (next === undefined || next === null) node[p] = {};
      else if (typeof next !== 'object') {
        throw new LoomError('OVERRIDE_INVALID', `override "${key}": "${p}" is not a section`, { field: key });
      }
      node = node[p] as Plain;
    }
    node[parts[parts.length - 1]!] = value;
  }
  return out;
}

/** Formats zod issues as one line each, naming the key path, what was expected and the allowed values. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const path = i.path.length ? i.path.join('.') : '(root)';
      const extra = 'values' in i && Array.isArray(i.values) ? ` (allowed: ${(i.values as unknown[]).join(', ')})` : '';
      return `${path}: ${i.message}${extra}`;
    })
    .join('; ');
}

/**
 * `section: false | {…}` unions report a bad key inside the section as one "Invalid input" on the section; the
 * branch that got past its type check (the object) says which key and why, so its issues replace the union's.
 */
function unionIssues(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((i) => {
    if (i.code !== 'invalid_union' || !Array.isArray(i.errors)) return [i];
    const typeOnly = (b: readonly z.core.$ZodIssue[]) =>
      b.every((x) => x.path.length === 0 && (x.code === 'invalid_type' || x.code === 'invalid_value'));
    const branches = i.errors.filter((b) => b.length > 0 && !typeOnly(b));
    if (branches.length === 0 && i.errors.every(typeOnly)) {
      // No branch fits the value's type: list what each would take (`false or one of "t", "tw", "hk"`).
      const wants = i.errors.flatMap((b) =>
        b.map((x) =>
          x.code === 'invalid_value'
            ? x.values.map((v) => JSON.stringify(v)).join(', ')
            : x.code === 'invalid_type'
              ? `a value of type ${x.expected}`
              : x.message,
        ),
      );
      return [{ ...i, message: `Invalid input: expected ${wants.join(' or ')}` }];
    }
    if (branches.length !== 1) return [i];
    return unionIssues(branches[0]!.map((x) => ({ ...x, path: [...i.path, ...x.path] })));
  });
}

/** Walks a zod schema down a key path (through optional/default/union/pipe wrappers) to the keys an object there takes. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  type Def = {
    type: string;
    shape?: Record<string, z.ZodType>;
    innerType?: z.ZodType;
    options?: z.ZodType[];
    in?: z.ZodType;
    out?: z.ZodType;
    element?: z.ZodType;
    valueType?: z.ZodType;
    getter?: () => z.ZodType;
  };
  const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;
  const candidates = (s: z.ZodType, depth = 0): z.ZodType[] => {
    if (depth > 20) return [];
    const d = defOf(s);
    if (d.innerType) return candidates(d.innerType, depth + 1);
    if (d.type === 'pipe' && d.in)
      return [...candidates(d.in, depth + 1), ...(d.out ? candidates(d.out, depth + 1) : [])];
    if (d.type === 'lazy' && d.getter) return candidates(d.getter(), depth + 1);
    if (d.options) return d.options.flatMap((o) => candidates(o, depth + 1));
    return [s];
  };
  let level = candidates(schema);
  for (const p of path) {
    level = level.flatMap((s) => {
      const d = defOf(s);
      if (d.shape && typeof p === 'string' && d.shape[p]) return candidates(d.shape[p]!);
      if (d.element && (typeof p === 'number' || /^\d+$/.test(String(p)))) return candidates(d.element);
      if (d.valueType) return candidates(d.valueType);
      return [];
    });
  }
  return [...new Set(level.flatMap((s) => Object.keys(defOf(s).shape ?? {})))];
}

/** The `key=value` override (as typed) that set `path` or a section above or below it, if any did. */
function overrideFor(overrides: readonly string[], path: readonly PropertyKey[]): string | undefined {
  const p = path.map(String);
  // The last matching override wins, as it does when overrides are applied.
  for (const ov of [...overrides].reverse()) {
    const eq = ov.indexOf('=');
    if (eq <= 0) continue;
    const k = ov.slice(0, eq).trim().split('.');
    const n = Math.min(k.length, p.length);
    if (n > 0 && k.slice(0, n).every((x, i) => x === p[i])) return ov;
  }
  return undefined;
}

/**
 * Validates a plain object against a schema; errors name the file, the key and (for YAML) the line, or the
 * command-line `key=value` override when that is where the bad value came from. An unknown key gets the nearest
 * valid key as a suggestion.
 */
export function validateConfig<S extends z.ZodType>(
  schema: S,
  value: unknown,
  source = '<config>',
  lineOf?: (path: readonly PropertyKey[]) => number | undefined,
  overrides: readonly string[] = [],
): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issues = unionIssues(r.error.issues);
    const first = issues[0];
    // An unknown key is best pointed at by its own line, not its parent's.
    const unknownKey = first && first.code === 'unrecognized_keys' && first.keys.length ? first.keys[0]! : undefined;
    const path = first && unknownKey !== undefined ? [...first.path, unknownKey] : first?.path;
    const fromCli = path ? overrideFor(overrides, path) : undefined;
    const near = first && unknownKey !== undefined ? closest(unknownKey, keysAt(schema, first.path)) : undefined;
    const where = fromCli ? ` (from the command-line override "${fromCli}")` : '';
    const hint = near
      ? `did you mean ${[...(first?.path ?? []), near].join('.')}?`
      : fromCli
        ? `fix the override "${fromCli}" on the command line (the YAML file was not the source of this value)`
        : 'fix the named key (see docs for the allowed keys) or override it with key=value';
    throw new LoomError('CONFIG_INVALID', `invalid config${where}: ${describeIssues(issues)}`, {
      file: fromCli ? `${source} + command line` : source,
      line: !fromCli && path && lineOf ? lineOf(path) : undefined,
      field: path?.join('.'),
      hint,
    });
  }
  return r.data;
}

export interface LoadedConfig<T> {
  config: T;
  path: string;
  /** Folder of the config file: relative paths inside the config resolve against it. */
  baseDir: string;
}

/** Reads a YAML config, applies overrides, validates with zod. */
export function loadConfig<S extends z.ZodType>(
  path: string,
  schema: S,
  overrides: readonly string[] = [],
): LoadedConfig<z.output<S>> {
  const abs = resolve(path);
  if (!existsSync(abs)) {
    throw new LoomError('CONFIG_NOT_FOUND', `config file not found: ${path}`, {
      file: path,
      hint: 'check the path, or run the command with --help to see an example config',
    });
  }
  const text = readFileSync(abs, 'utf8');
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new LoomError('CONFIG_PARSE', `YAML syntax error: ${e.message.split('\n')[0]}`, {
      file: path,
      line: e.linePos?.[0]?.line,
      hint: 'check indentation and quoting around that line',
    });
  }
  const raw = (doc.toJS() ?? {}) as Plain;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new LoomError('CONFIG_INVALID', 'config must be a YAML mapping of key: value', { file: path });
  }
  const merged = applyOverrides(raw, overrides);
  const lineOf = (p: readonly PropertyKey[]): number | undefined => {
    const node = doc.getIn(p as unknown[], true) as { range?: [number, number, number] } | undefined;
    const off = node?.range?.[0];
    return off === undefined ? undefined : counter.linePos(off).line;
  };
  return { config: validateConfig(schema, merged, path, lineOf, overrides), path: abs, baseDir: dirname(abs) };
}
