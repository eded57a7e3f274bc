/** Harness for running data steps in memory (tests and benchmarks): rows from texts, a collecting StepContext, a temp folder. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataRow, RejectRecord } from '../core/types.ts';
import type { Step, StepContext } from './step.ts';

export function row(id: string, text: string, extra: Partial<DataRow> = {}): DataRow {
  return { id, text, meta: {}, source: { file: 'mem.jsonl', line: Number(id.replace(/\D/g, '')) || 0 }, ...extra };
}

export async function* stream<T>(xs: readonly T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

export interface Collected {
  kept: DataRow[];
  rejects: RejectRecord[];
  counts: Record<string, number>;
  tmpDir: string;
}

export function tempDir(prefix = 'loom-dedup-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function runStep(step: Step, rows: readonly DataRow[]): Promise<Collected> {
  const t = tempDir();
  const rejects: RejectRecord[] = [];
  const counts: Record<string, number> = {};
  const ctx: StepContext = {
    reject: (r) => rejects.push(r),
    count: (k, n = 1) => {
      counts[k] = (counts[k] ?? 0) + n;
    },
    tmpDir: t.dir,
    strict: false,
  };
  const kept: DataRow[] = [];
  try {
    for await (const r of step.run(stream(rows), ctx)) kept.push(r);
  } finally {
    t.cleanup();
  }
  return { kept, rejects, counts, tmpDir: t.dir };
}

/** Deterministic pseudo-random words (lowercase a-z, 3..8 letters) for constructing unrelated texts. */
export function randomWords(count: number, seed: number): string[] {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = 3 + Math.floor(next() * 6);
    let w = '';
    for (let k = 0; k < len; k++) w += String.fromCharCode(97 + Math.floor(next() * 26));
    out.push(w);
  }
  return out;
}

/** Deterministic pseudo-random common Han characters (U+4E00..U+62FF) for constructing unrelated zh texts. */
export function randomHan(count: number, seed: number): string {
  let s = seed >>> 0 || 7;
  let out = '';
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out += String.fromCharCode(0x4e00 + ((s >>> 8) % 0x1500));
  }
  return out;
}
