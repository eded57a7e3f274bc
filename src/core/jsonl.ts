import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { LoomError } from './errors.ts';

function parseLine(line: string, file: string, n: number): unknown {
  try {
    return JSON.parse(line);
  } catch (e) {
    throw new LoomError('INPUT_MALFORMED', `not valid JSON: ${(e as Error).message}`, {
      file,
      line: n,
      hint: 'each line of a .jsonl file must be one complete JSON value',
    });
  }
}

/** Reads a whole JSON Lines file Loom wrote (blank lines skipped); a bad line is an error naming file:line. */
export function readJsonlSync<T = unknown>(path: string): T[] {
  const out: T[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim()) out.push(parseLine(l, path, i + 1) as T);
  }
  return out;
}

/** Streams a JSON Lines file one value at a time (blank lines skipped), for files too big to hold as text. */
export async function* readJsonl<T = unknown>(path: string): AsyncGenerator<T> {
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  try {
    for await (const line of rl) {
      n++;
      if (line.trim()) yield parseLine(line, path, n) as T;
    }
  } finally {
    rl.close();
  }
}
