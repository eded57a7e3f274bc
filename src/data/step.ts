import type { DataRow, RejectRecord } from '../core/types.ts';

/**
 * The data pipeline is a list of small streaming steps (datatrove's shape). A step sees rows one at a time
 * and yields the rows it keeps; everything it drops or changes is reported through `ctx.reject`, so nothing is
 * lost silently. Steps that need the whole corpus (dedup, split) may make two passes over a spill file.
 */
export interface StepContext {
  /** Record a dropped or changed row (goes to rejects.jsonl with the step name and source). */
  reject(r: RejectRecord): void;
  /** Add to a named counter for the report, e.g. count('pii.email', 2) or count('filter.gopher_rep'). */
  count(key: string, n?: number): void;
  /** Folder for temporary spill files of this run (removed at the end). */
  tmpDir: string;
  /** Fail fast on the first malformed input instead of rejecting it. */
  strict: boolean;
}

export interface Step {
  readonly name: string;
  run(rows: AsyncIterable<DataRow>, ctx: StepContext): AsyncIterable<DataRow>;
}

/** Text a step should look at for a row: the text itself, or all message contents joined. */
export function rowText(row: DataRow): string {
  if (row.text !== undefined) return row.text;
  if (row.messages) return row.messages.map((m) => m.content).join('\n');
  const parts: string[] = [];
  for (const v of [row.prompt, row.chosen, row.rejected]) {
    if (typeof v === 'string') parts.push(v);
    else if (Array.isArray(v)) parts.push(...v.map((m) => m.content));
  }
  return parts.join('\n');
}
