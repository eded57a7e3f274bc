/**
 * Row spill files for two-pass steps: pass 1 appends rows as JSON lines to a temp file in ctx.tmpDir, pass 2
 * streams them back in the same order. Memory stays bounded by the stream buffers, not by the corpus.
 */
import { createReadStream, createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DataRow } from '../../core/types.ts';

let seq = 0;

export class RowSpill {
  readonly path: string;
  private readonly out: WriteStream;
  private closed = false;
  count = 0;

  constructor(dir: string, name: string) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${name}.${process.pid}.${Date.now().toString(36)}.${seq++}.jsonl`);
    this.out = createWriteStream(this.path);
  }

  async write(row: DataRow): Promise<void> {
    this.count++;
    if (!this.out.write(`${JSON.stringify(row)}\n`)) {
      await new Promise<void>((resolve) => this.out.once('drain', () => resolve()));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve, reject) => this.out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }

  /** Streams the rows back (closes the writer first) and deletes the file when done or abandoned. */
  async *read(): AsyncGenerator<DataRow> {
    await this.close();
    const rl = createInterface({ input: createReadStream(this.path, { encoding: 'utf8' }), crlfDelay: Infinity });
    try {
      for await (const line of rl) {
        if (line) yield JSON.parse(line) as DataRow;
      }
    } finally {
      rl.close();
      this.remove();
    }
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }

  /** Closes and deletes (for error paths). */
  async discard(): Promise<void> {
    await this.close().catch(() => undefined);
    this.remove();
  }
}

/** Growable Float64 column (one number per row) without per-row objects. */
export class F64Column {
  private a = new Float64Array(1024);
  length = 0;

  push(v: number): void {
    if (this.length === this.a.length) {
      const g = new Float64Array(this.a.length * 2);
      g.set(this.a);
      this.a = g;
    }
    this.a[this.length++] = v;
  }

  get(i: number): number {
    return this.a[i]!;
  }
}
