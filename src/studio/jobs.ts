/**
 * The one training job a Studio runs at a time, in-process through the same `runTraining` as `loom train`.
 * Stop aborts through the trainer's signal (it saves a checkpoint and returns), so Resume continues bit-identically.
 */
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.ts';
import { type TrainConfig, trainConfigSchema } from '../config/train.ts';
import { LoomError } from '../core/errors.ts';
import type { Registry } from '../registry/db.ts';
import type { Preflight } from '../train/preflight.ts';
import { runTraining } from '../train/trainer.ts';

export interface JobState {
  config: string;
  status: 'running' | 'finished' | 'stopped' | 'failed';
  outputDir: string;
  /** The run folder, absolute (the Studio shows it relative to the project and follows its curves live). */
  outputPath: string;
  runId?: string;
  steps?: number;
  lastLoss?: number;
  error?: string;
  log: string[];
}

export interface Preview {
  yaml: string;
  preflight: Preflight;
}

export class TrainJobs {
  private current?: { state: JobState; abort: AbortController; done: Promise<void> };

  constructor(private readonly registry?: Registry) {}

  private load(path: string, overrides: readonly string[]): { config: TrainConfig; baseDir: string } {
    const { config, baseDir } = loadConfig(path, trainConfigSchema, overrides);
    return { config, baseDir };
  }

  /** The resolved YAML and the measured pre-flight (parameters, memory, one timed step), as `--dry-run` prints. */
  async preview(path: string, overrides: readonly string[]): Promise<Preview> {
    const { config, baseDir } = this.load(path, overrides);
    const r = await runTraining({ config, baseDir, dryRun: true, quiet: true, log: () => {} });
    return { yaml: stringify(config), preflight: r.preflight };
  }

  start(path: string, overrides: readonly string[], resume: boolean): JobState {
    if (this.current?.state.status === 'running') {
      throw new LoomError('TRAIN_INVALID', 'a training job is already running', { hint: 'stop it first' });
    }
    const { config, baseDir } = this.load(path, overrides);
    const abort = new AbortController();
    const state: JobState = {
      config: path,
      status: 'running',
      outputDir: config.output_dir,
      outputPath: resolve(baseDir, config.output_dir),
      log: [],
    };
    const done = runTraining({
      config,
      baseDir,
      resume,
      signal: abort.signal,
      registry: this.registry,
      quiet: true,
      log: (line) => {
        state.log.push(line);
        if (state.log.length > 200) state.log.shift();
      },
    }).then(
      (r) => {
        state.runId = r.runId;
        state.steps = r.steps;
        state.lastLoss = r.lastLoss;
        state.status = r.interrupted ? 'stopped' : 'finished';
      },
      (e: unknown) => {
        state.status = 'failed';
        state.error = e instanceof Error ? e.message : String(e);
      },
    );
    this.current = { state, abort, done };
    return state;
  }

  stop(): JobState {
    if (this.current?.state.status !== 'running') {
      throw new LoomError('TRAIN_INVALID', 'no training job is running');
    }
    this.current.abort.abort();
    return this.current.state;
  }

  status(): JobState | null {
    return this.current?.state ?? null;
  }

  /** Waits for a running job to save and return (server shutdown, tests). */
  async close(): Promise<void> {
    if (!this.current) return;
    if (this.current.state.status === 'running') this.current.abort.abort();
    await this.current.done;
  }
}
