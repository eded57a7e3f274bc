/**
 * Progress for long work: a bar with rate and ETA on a TTY, one JSON line per update otherwise
 * (so CI logs and other programs can follow along). Updates are throttled.
 */
export interface ProgressOptions {
  label: string;
  total?: number;
  unit?: string;
  stream?: NodeJS.WriteStream;
  /** Force JSON lines even on a TTY (or a bar on a non-TTY). */
  json?: boolean;
  /** Minimum milliseconds between updates. */
  intervalMs?: number;
  silent?: boolean;
}

export class Progress {
  private readonly opts: Required<Omit<ProgressOptions, 'total' | 'stream' | 'json'>> & {
    total?: number;
    json: boolean;
  };
  private readonly stream: NodeJS.WriteStream;
  private readonly start = Date.now();
  private last = 0;
  private value = 0;
  private extra: Record<string, number | string> = {};

  constructor(opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.opts = {
      label: opts.label,
      total: opts.total,
      unit: opts.unit ?? 'items',
      json: opts.json ?? !this.stream.isTTY,
      intervalMs: opts.intervalMs ?? (this.stream.isTTY ? 100 : 2000),
      silent: opts.silent ?? process.env.LOOM_QUIET === '1',
    };
  }

  setTotal(total: number): void {
    this.opts.total = total;
  }

  tick(n = 1, extra?: Record<string, number | string>): void {
    this.update(this.value + n, extra);
  }

  update(value: number, extra?: Record<string, number | string>): void {
    this.value = value;
    if (extra) this.extra = { ...this.extra, ...extra };
    const now = Date.now();
    if (now - this.last >= this.opts.intervalMs) {
      this.last = now;
      this.render(false);
    }
  }

  done(extra?: Record<string, number | string>): void {
    if (extra) this.extra = { ...this.extra, ...extra };
    this.render(true);
  }

  private render(final: boolean): void {
    if (this.opts.silent) return;
    const elapsed = (Date.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.value / elapsed : 0;
    const total = this.opts.total;
    const eta = total && rate > 0 ? Math.max(0, (total - this.value) / rate) : undefined;
    if (this.opts.json) {
      const rec = {
        progress: this.opts.label,
        done: this.value,
        total: total ?? null,
        rate: Number(rate.toFixed(2)),
        unit: this.opts.unit,
        eta_s: eta === undefined ? null : Number(eta.toFixed(1)),
        elapsed_s: Number(elapsed.toFixed(1)),
        final,
        ...this.extra,
      };
      this.stream.write(`${JSON.stringify(rec)}\n`);
      return;
    }
    const width = 28;
    const frac = total ? Math.min(1, this.value / total) : 0;
    const bar = total ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ` : '';
    const extras = Object.entries(this.extra)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const line =
      `${this.opts.label} ${bar}${this.value}${total ? `/${total}` : ''} ${this.opts.unit} ` +
      `${rate.toFixed(1)}/s${eta !== undefined ? ` eta ${formatSeconds(eta)}` : ''} ${extras}`;
    this.stream.write(`\r${line.padEnd(100)}${final ? '\n' : ''}`);
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${Math.round((s % 3600) / 60)}m`;
}
