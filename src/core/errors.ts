/**
 * Typed errors shared by every stage. A LoomError always carries a stable code (for scripts and tests),
 * a human message, and where possible the place (file, line, field) and a hint on how to fix it.
 */
export type ErrorCode =
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_PARSE'
  | 'CONFIG_INVALID'
  | 'OVERRIDE_INVALID'
  | 'INPUT_NOT_FOUND'
  | 'INPUT_FORMAT'
  | 'INPUT_ENCODING'
  | 'INPUT_MALFORMED'
  | 'OUTPUT_WRITE'
  | 'DATA_LINT'
  | 'METRIC_INPUT'
  | 'METRIC_OPTION'
  | 'MODEL_INVALID'
  | 'MODEL_SHAPE'
  | 'TOKENIZER'
  | 'TEMPLATE'
  | 'GRAPH'
  | 'RUNTIME'
  | 'TRAIN_INVALID'
  | 'TRAIN_RESOURCES'
  | 'CHECKPOINT'
  | 'CHECKPOINT_CORRUPT'
  | 'PROVIDER'
  | 'NETWORK'
  | 'NOT_IMPLEMENTED'
  | 'INTERNAL';

export interface ErrorPlace {
  file?: string;
  line?: number;
  field?: string;
}

export interface LoomErrorOptions extends ErrorPlace {
  hint?: string;
  cause?: unknown;
}

export class LoomError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly line?: number;
  readonly field?: string;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, opts: LoomErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LoomError';
    this.code = code;
    this.file = opts.file;
    this.line = opts.line;
    this.field = opts.field;
    this.hint = opts.hint;
  }

  /** One readable block: `file:line: field: message` then the hint. */
  format(): string {
    const where = [this.file && (this.line !== undefined ? `${this.file}:${this.line}` : this.file), this.field]
      .filter(Boolean)
      .join(': ');
    const head = `error[${this.code}]${where ? ` ${where}:` : ''} ${this.message}`;
    return this.hint ? `${head}\n  hint: ${this.hint}` : head;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      file: this.file,
      line: this.line,
      field: this.field,
      hint: this.hint,
    };
  }
}

export function isLoomError(e: unknown): e is LoomError {
  return e instanceof LoomError;
}
