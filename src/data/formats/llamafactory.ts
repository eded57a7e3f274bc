import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { writeJsonAtomic } from '../../core/atomic.ts';
import { LoomError } from '../../core/errors.ts';
import type { DataRow } from '../../core/types.ts';
import { isRecord, type JsonRecord } from './common.ts';
import { type FormatName, importRecord } from './index.ts';
import { readJsonRecords } from './io.ts';
import type { ShareGptTags } from './sharegpt.ts';

/**
 * LLaMA-Factory `dataset_info.json` registries (data/README.md): one object per dataset name with a source
 * (`file_name` here; hub/script sources need a network and are refused), `formatting` (alpaca | sharegpt),
 * `ranking`, `columns` and, for sharegpt, `tags`. We read a registry plus its local files, and write one that
 * describes our outputs so LLaMA-Factory can train on them unchanged.
 */
export interface RegistryEntry {
  file_name?: string;
  hf_hub_url?: string;
  ms_hub_url?: string;
  script_url?: string;
  cloud_file_name?: string;
  formatting?: 'alpaca' | 'sharegpt';
  ranking?: boolean;
  num_samples?: number;
  columns?: Record<string, string>;
  tags?: Partial<ShareGptTags>;
  [k: string]: unknown;
}

export type Registry = Record<string, RegistryEntry>;

export function readRegistry(path: string): Registry {
  if (!existsSync(path)) {
    throw new LoomError('INPUT_NOT_FOUND', `dataset registry not found: ${path}`, {
      file: path,
      hint: 'point at a LLaMA-Factory dataset_info.json',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new LoomError('INPUT_FORMAT', `dataset_info.json is not valid JSON: ${(e as Error).message}`, { file: path });
  }
  if (!isRecord(parsed))
    throw new LoomError('INPUT_FORMAT', 'dataset_info.json must be an object of datasets', { file: path });
  for (const [name, e] of Object.entries(parsed)) {
    if (!isRecord(e))
      throw new LoomError('INPUT_FORMAT', `entry "${name}" must be an object`, { file: path, field: name });
    if (e.formatting !== undefined && e.formatting !== 'alpaca' && e.formatting !== 'sharegpt') {
      throw new LoomError('INPUT_FORMAT', `entry "${name}": formatting must be alpaca or sharegpt`, {
        file: path,
        field: `${name}.formatting`,
      });
    }
  }
  return parsed as Registry;
}

export type RegistryItem =
  | { row: DataRow; dataset: string }
  | { error: LoomError; dataset: string; file: string; line: number; raw: unknown };

function filesOf(path: string): string[] {
  if (!existsSync(path)) {
    throw new LoomError('INPUT_NOT_FOUND', `dataset file not found: ${path}`, { file: path });
  }
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .filter((f) => /\.(jsonl?|json)$/i.test(f))
      .sort()
      .map((f) => join(path, f));
  }
  return [path];
}

/**
 * The data files of the named datasets (all when `names` is empty), in the order `readRegistryDatasets` reads
 * them, named as rows' `source.file` (relative to the working directory). Datasets without a local file are
 * left out.
 */
export function registryDatasetFiles(registryPath: string, names: string[] = []): string[] {
  const reg = readRegistry(registryPath);
  const dir = dirname(registryPath);
  const out: string[] = [];
  for (const name of names.length ? names : Object.keys(reg)) {
    const e = reg[name];
    if (!e?.file_name || !existsSync(join(dir, e.file_name))) continue;
    for (const f of filesOf(join(dir, e.file_name))) out.push(relative(process.cwd(), f) || f);
  }
  return out;
}

/** Reads the named datasets (all when `names` is empty) of a registry as rows. */
export async function* readRegistryDatasets(registryPath: string, names: string[] = []): AsyncGenerator<RegistryItem> {
  const reg = readRegistry(registryPath);
  const dir = dirname(registryPath);
  const wanted = names.length ? names : Object.keys(reg);
  for (const name of wanted) {
    const e = reg[name];
    if (!e) {
      throw new LoomError('INPUT_NOT_FOUND', `dataset "${name}" is not in ${registryPath}`, {
        file: registryPath,
        hint: `known: ${Object.keys(reg).join(', ')}`,
      });
    }
    if (!e.file_name) {
      throw new LoomError(
        'NOT_IMPLEMENTED',
        `dataset "${name}" is not a local file (hub/script/cloud sources need a network)`,
        {
          file: registryPath,
          field: name,
          hint: 'download it and set file_name',
        },
      );
    }
    const formatting = e.formatting ?? 'alpaca';
    const columns = { ...(e.columns ?? {}) };
    // Pretraining in alpaca formatting: only the prompt column is used (LLaMA-Factory data/README.md).
    const pretraining =
      formatting === 'alpaca' && columns.prompt !== undefined && columns.response === undefined && !e.ranking;
    if (formatting === 'sharegpt' && columns.messages === undefined) columns.messages = 'conversations';
    let n = 0;
    const files = filesOf(join(dir, e.file_name));
    datasetFiles: for (const file of files) {
      if (!/\.(jsonl?|json)$/i.test(file)) {
        throw new LoomError('NOT_IMPLEMENTED', `registry file ${file}: only json/jsonl are read here`, {
          file,
          hint: 'convert it to JSONL, or list it under inputs: in data.yaml (the ingest step reads csv/parquet)',
        });
      }
      for await (const rec of readJsonRecords(file)) {
        // num_samples caps this dataset only; the next dataset is still read.
        if (e.num_samples !== undefined && n >= e.num_samples) break datasetFiles;
        const source = { file: relative(process.cwd(), file) || file, line: rec.line };
        if ('error' in rec) {
          yield { error: new LoomError('INPUT_MALFORMED', rec.error, source), dataset: name, ...source, raw: rec.raw };
          continue;
        }
        try {
          // A folder dataset has several files: their line numbers repeat, so the id names the file too.
          const id = files.length > 1 ? `${name}:${basename(file)}:${rec.line}` : `${name}:${rec.line}`;
          const row = importRecord(rec.value, formatting, source, id, {
            columns,
            tags: e.tags,
            pretraining: pretraining && isRecord(rec.value) && !('output' in rec.value),
          });
          row.meta = { ...row.meta, dataset: name };
          n++;
          yield { row, dataset: name };
        } catch (err) {
          if (!(err instanceof LoomError)) throw err;
          yield { error: err, dataset: name, ...source, raw: rec.value };
        }
      }
    }
  }
}

/** The registry entry that tells LLaMA-Factory how to read one of our output files. */
export function registryEntryFor(fileName: string, format: FormatName, ranking = false): RegistryEntry {
  switch (format) {
    case 'messages':
    case 'openai':
      if (ranking) break;
      return {
        file_name: fileName,
        formatting: 'sharegpt',
        columns: { messages: 'messages' },
        tags: {
          role_tag: 'role',
          content_tag: 'content',
          user_tag: 'user',
          assistant_tag: 'assistant',
          system_tag: 'system',
          observation_tag: 'tool',
        },
      };
    case 'sharegpt':
      return ranking
        ? {
            file_name: fileName,
            formatting: 'sharegpt',
            ranking: true,
            columns: { messages: 'conversations', system: 'system', chosen: 'chosen', rejected: 'rejected' },
          }
        : {
            file_name: fileName,
            formatting: 'sharegpt',
            columns: { messages: 'conversations', system: 'system', tools: 'tools' },
          };
    case 'alpaca':
      return ranking
        ? {
            file_name: fileName,
            ranking: true,
            columns: {
              prompt: 'instruction',
              query: 'input',
              chosen: 'chosen',
              rejected: 'rejected',
              system: 'system',
              history: 'history',
            },
          }
        : {
            file_name: fileName,
            columns: {
              prompt: 'instruction',
              query: 'input',
              response: 'output',
              system: 'system',
              history: 'history',
            },
          };
    case 'text':
      return { file_name: fileName, columns: { prompt: 'text' } };
    default:
      break;
  }
  throw new LoomError('INPUT_FORMAT', `LLaMA-Factory cannot read ${format}${ranking ? ' preference' : ''} files`, {
    hint: 'write preference data as sharegpt or alpaca, SFT data as messages/openai/sharegpt/alpaca',
  });
}

/** Writes (or updates) `dir/dataset_info.json` with entries for our files; other entries are kept. */
export function writeRegistry(dir: string, entries: Record<string, RegistryEntry>): string {
  const path = join(dir, 'dataset_info.json');
  let existing: JsonRecord = {};
  if (existsSync(path)) {
    try {
      const p = JSON.parse(readFileSync(path, 'utf8'));
      if (isRecord(p)) existing = p;
    } catch {
      // An unreadable registry is replaced; ours is the one that describes these files.
    }
  }
  writeJsonAtomic(path, { ...existing, ...entries });
  return path;
}
