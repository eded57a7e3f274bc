import { createWriteStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { LoomError } from './errors.ts';

/** Temp name next to the target so the final rename stays on one filesystem (and is atomic). */
function tempPathFor(path: string): string {
  return `${path}.${process.pid}.${Date.now().toString(36)}.tmp`;
}

/** Writes a whole file atomically: a killed process leaves either the old file or the new one, never half. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new LoomError('OUTPUT_WRITE', `cannot write ${path}: ${(e as Error).message}`, { file: path, cause: e });
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A streaming writer whose output only appears under its final name after `commit()`.
 * `abort()` (or a crash) leaves at most a `.tmp` file, which the next run overwrites.
 */
export class AtomicWriter {
  readonly path: string;
  private readonly tmp: string;
  private readonly stream: Writable;
  private done = false;

  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = tempPathFor(path);
    this.stream = createWriteStream(this.tmp);
  }

  /** Resolves once the chunk is accepted; waits for drain so memory stays bounded. */
  async write(chunk: string | Uint8Array): Promise<void> {
    if (!this.stream.write(chunk)) {
      await new Promise<void>((resolve) => this.stream.once('drain', () => resolve()));
    }
  }

  async commit(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await new Promise<void>((resolve, reject) => {
      this.stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
    renameSync(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await new Promise<void>((resolve) => this.stream.end(() => resolve()));
    rmSync(this.tmp, { force: true });
  }
}
