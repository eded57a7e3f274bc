/**
 * What a project folder holds, found by the files each stage writes (no index of its own to drift): data runs
 * (report.json beside rejects.jsonl), training runs (metrics.jsonl beside lineage.json, plus the registry),
 * evaluation runs (results.json), model folders (config.json + weights) and LoRA adapters (adapter_config.json).
 */
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { LoomError } from '../core/errors.ts';
import type { RunResult } from '../eval/suite/results.ts';

export interface Found {
  datasets: string[];
  trainRuns: string[];
  evalRuns: string[];
  models: string[];
  adapters: string[];
  configs: { path: string; kind: string }[];
}

const SKIP = new Set(['node_modules', '.git', 'checkpoints', 'studio-dist', '.loom']);
const MAX_DEPTH = 6;

/** One walk of the project (bounded depth); paths come back relative to the project folder. */
export function scanProject(dir: string): Found {
  const f: Found = { datasets: [], trainRuns: [], evalRuns: [], models: [], adapters: [], configs: [] };
  const walk = (d: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    const has = new Set(names);
    const rel = relative(dir, d) || '.';
    if (has.has('report.json') && has.has('rejects.jsonl')) f.datasets.push(rel);
    if (has.has('metrics.jsonl') && has.has('lineage.json')) f.trainRuns.push(rel);
    if (has.has('results.json')) f.evalRuns.push(rel);
    if (has.has('config.json') && names.some((n) => n.endsWith('.safetensors'))) f.models.push(rel);
    if (has.has('adapter_config.json')) f.adapters.push(rel);
    for (const n of names) {
      if (/\.ya?ml$/.test(n)) f.configs.push({ path: join(rel, n), kind: configKind(join(d, n)) });
    }
    if (depth >= MAX_DEPTH) return;
    for (const n of names) {
      if (SKIP.has(n) || n.startsWith('.')) continue;
      const p = join(d, n);
      try {
        if (statSync(p).isDirectory()) walk(p, depth + 1);
      } catch {
        // a file vanished between readdir and stat (a run writing): skip it
      }
    }
  };
  walk(dir, 0);
  return f;
}

/** Guesses a YAML's stage from its name and first keys, so the Training form lists train configs only. */
function configKind(p: string): string {
  const name = basename(p);
  const m = /^(data|train|eval|serve|pipeline|guard)/.exec(name);
  if (m) return m[1]!;
  try {
    const head = readFileSync(p, 'utf8').slice(0, 2000);
    if (/^finetuning_type:|^stage:/m.test(head)) return 'train';
    if (/^inputs:/m.test(head)) return 'data';
    if (/^tasks:/m.test(head)) return 'eval';
    if (/^models:/m.test(head)) return 'serve';
  } catch {}
  return 'other';
}

/**
 * Resolves a path the browser sent against the project and refuses anything outside it: the API never reads a
 * file the project does not hold, whatever `..` or absolute path a request carries.
 */
export function inProject(dir: string, rel: string): string {
  const p = resolve(dir, rel);
  const r = relative(dir, p);
  if (r.startsWith('..') || resolve(dir, r) !== p) {
    throw new LoomError('INPUT_NOT_FOUND', `path "${rel.slice(0, 200)}" is outside the project`, {
      field: 'path',
      hint: 'use a path the Studio listed (relative to the project folder)',
    });
  }
  if (!existsSync(p)) throw new LoomError('INPUT_NOT_FOUND', `${rel.slice(0, 200)} does not exist in the project`);
  return p;
}

export function readJson<T>(p: string): T {
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as T;
  } catch (e) {
    throw new LoomError('INPUT_MALFORMED', `cannot read ${basename(p)}: ${(e as Error).message}`, {
      file: p,
      hint: 'the file is damaged or still being written; rerun the stage that wrote it',
    });
  }
}

/** Reads up to `limit` JSON lines after skipping `offset`; a half-written last line (a run in progress) is skipped. */
async function readJsonl(p: string, offset: number, limit: number): Promise<unknown[]> {
  const out: unknown[] = [];
  if (!existsSync(p)) return out;
  const rl = createInterface({ input: createReadStream(p, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  let i = 0;
  for await (const line of rl) {
    if (!line.trim()) continue;
    if (i++ < offset) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      continue;
    }
    if (out.length >= limit) break;
  }
  rl.close();
  return out;
}

export interface DatasetView {
  path: string;
  report: unknown;
}

export function datasetReport(dir: string, rel: string): DatasetView {
  const d = inProject(dir, rel);
  return { path: rel, report: readJson(join(d, 'report.json')) };
}

/** Rejected/changed rows with their reason, or kept rows of one split (train/validation/test). */
export async function datasetRows(
  dir: string,
  rel: string,
  which: 'rejects' | 'train' | 'validation' | 'test',
  offset: number,
  limit: number,
): Promise<unknown[]> {
  return readJsonl(join(inProject(dir, rel), `${which}.jsonl`), offset, limit);
}

export interface CurvePoint {
  step: number;
  split: string;
  loss?: number;
  lr?: number;
  grad_norm?: number;
}

/** The curves a training run logged (train and eval rows), in step order. */
export async function trainCurves(dir: string, rel: string): Promise<CurvePoint[]> {
  const rows = (await readJsonl(join(inProject(dir, rel), 'metrics.jsonl'), 0, 1_000_000)) as Record<string, unknown>[];
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  return rows
    .filter((r) => typeof r.step === 'number')
    .map((r) => ({
      step: r.step as number,
      split: typeof r.split === 'string' ? r.split : 'train',
      loss: num(r.loss),
      lr: num(r.lr),
      grad_norm: num(r.grad_norm),
    }));
}

export function trainRunInfo(dir: string, rel: string): { path: string; lineage: unknown; config?: string } {
  const d = inProject(dir, rel);
  const cfg = join(d, 'config.yaml');
  return {
    path: rel,
    lineage: readJson(join(d, 'lineage.json')),
    config: existsSync(cfg) ? readFileSync(cfg, 'utf8') : undefined,
  };
}

export function evalResult(dir: string, rel: string): RunResult {
  return readJson<RunResult>(join(inProject(dir, rel), 'results.json'));
}

export interface LineageEdge {
  from: string;
  to: string;
  relation: string;
}

/**
 * Edges from the lineage each stage already records: training runs name their dataset hash, base model and parent
 * runs (lineage.json); eval runs name the datasets they read and the model folders they scored (results.json).
 */
export function lineageEdges(dir: string, found: Found): LineageEdge[] {
  const edges: LineageEdge[] = [];
  for (const rel of found.trainRuns) {
    try {
      const l = readJson<Record<string, unknown>>(join(dir, rel, 'lineage.json'));
      const run = `run:${String(l.run_id ?? rel)}`;
      if (typeof l.dataset_hash === 'string')
        edges.push({ from: `data:${l.dataset_hash.slice(0, 12)}`, to: run, relation: 'trained on' });
      if (typeof l.base_model === 'string')
        edges.push({ from: `model:${shortPath(dir, l.base_model)}`, to: run, relation: 'base model' });
      if (Array.isArray(l.parents))
        for (const p of l.parents) edges.push({ from: `run:${String(p)}`, to: run, relation: 'parent run' });
      edges.push({ from: run, to: `folder:${rel}`, relation: 'wrote' });
    } catch {}
  }
  for (const rel of found.evalRuns) {
    try {
      const r = evalResult(dir, rel);
      const ev = `eval:${r.runId}`;
      for (const d of r.datasets ?? [])
        edges.push({ from: `data:${d.sha256.slice(0, 12)}`, to: ev, relation: `task ${d.task}` });
      for (const m of r.models)
        if (m.path) edges.push({ from: `model:${shortPath(dir, m.path)}`, to: ev, relation: `scored as ${m.id}` });
    } catch {}
  }
  return edges;
}

function shortPath(dir: string, p: string): string {
  const r = relative(dir, p);
  return r.startsWith('..') ? p : r;
}
