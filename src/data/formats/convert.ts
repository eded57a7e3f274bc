import { basename, dirname } from 'node:path';
import { LoomError } from '../../core/errors.ts';
import type { DataRow } from '../../core/types.ts';
import { isMalformed, readInputs } from '../ingest/index.ts';
import { type FormatName, type FormatOptions, type InputFormatName, importDataRow, importRecord } from './index.ts';
import { readJsonRecords, writeRows } from './io.ts';
import { readRegistryDatasets, registryEntryFor, writeRegistry } from './llamafactory.ts';

export interface ConvertOptions {
  input: string;
  output: string;
  from?: InputFormatName | 'llamafactory';
  to: FormatName;
  /** Options for reading (columns/tags of the input). */
  read?: FormatOptions;
  /** Options for writing (columns/tags of the output). */
  write?: FormatOptions;
  /** Datasets to read when the input is a dataset_info.json (all when empty). */
  datasets?: string[];
  /** Also write/update dataset_info.json next to the output with this dataset name. */
  registryName?: string;
  strict?: boolean;
}

export interface ConvertIssue {
  file: string;
  line: number;
  message: string;
}

export interface ConvertResult {
  read: number;
  written: number;
  issues: ConvertIssue[];
  output: string;
  registry?: string;
}

/** Rows of a JSON/JSONL file or a LLaMA-Factory registry; unreadable records become issues (or throw when strict). */
export async function* readDatasetFile(
  input: string,
  from: InputFormatName | 'llamafactory',
  opts: FormatOptions,
  issues: ConvertIssue[],
  strict = false,
  datasets: string[] = [],
): AsyncGenerator<DataRow> {
  const fail = (file: string, line: number, e: LoomError | string) => {
    const message = typeof e === 'string' ? e : e.message;
    if (strict) {
      throw typeof e === 'string' ? new LoomError('INPUT_MALFORMED', message, { file, line }) : e;
    }
    issues.push({ file, line, message });
  };
  if (from === 'llamafactory' || basename(input) === 'dataset_info.json') {
    for await (const it of readRegistryDatasets(input, datasets)) {
      if ('row' in it) yield it.row;
      else fail(it.file, it.line, it.error);
    }
    return;
  }
  if (!/\.(jsonl?|json)$/i.test(input)) {
    // CSV, TSV, Parquet, TXT, compressed files, other encodings: the pipeline's reader.
    for await (const item of readInputs([input], { strict })) {
      if (isMalformed(item)) {
        fail(item.file, item.line, item.reason);
        continue;
      }
      try {
        yield importDataRow(item, from, opts);
      } catch (e) {
        if (!(e instanceof LoomError)) throw e;
        fail(item.source.file, item.source.line, e);
      }
    }
    return;
  }
  for await (const rec of readJsonRecords(input)) {
    if ('error' in rec) {
      fail(input, rec.line, rec.error);
      continue;
    }
    const source = { file: input, line: rec.line };
    try {
      yield importRecord(rec.value, from, source, `${input}:${rec.line}`, opts);
    } catch (e) {
      if (!(e instanceof LoomError)) throw e;
      fail(input, rec.line, e);
    }
  }
}

/** Converts one dataset file between formats (and optionally registers it for LLaMA-Factory). */
export async function convert(o: ConvertOptions): Promise<ConvertResult> {
  const issues: ConvertIssue[] = [];
  let read = 0;
  const rows = async function* () {
    for await (const r of readDatasetFile(o.input, o.from ?? 'auto', o.read ?? {}, issues, o.strict, o.datasets)) {
      read++;
      yield r;
    }
  };
  let ranking = false;
  const written = await writeRows(o.output, rows(), o.to, o.write ?? {}, (row, e) => {
    if (o.strict) throw e;
    issues.push({ file: row.source.file, line: row.source.line, message: e.message });
  });
  const result: ConvertResult = { read, written, issues, output: o.output };
  if (o.registryName) {
    ranking = false;
    // Peek at the output kind: a preference file needs `ranking: true`.
    for await (const r of readDatasetFile(o.output, o.to, o.write ?? {}, [], false)) {
      ranking = r.chosen !== undefined;
      break;
    }
    result.registry = writeRegistry(dirname(o.output), {
      [o.registryName]: registryEntryFor(basename(o.output), o.to, ranking),
    });
  }
  return result;
}
