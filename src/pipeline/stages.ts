import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { loadPromptRef } from '../config/prompt.ts';
import { loadServeConfig } from '../config/serve.ts';
import { trainConfigSchema } from '../config/train.ts';
import { writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { runDataPipeline } from '../data/pipeline.ts';
import { promptKey } from '../eval/suite/prompts.ts';
import { runSuite } from '../eval/suite/runner.ts';
import { exportArtefact, normalizeDtype } from '../export/export.ts';
import type { Registry } from '../registry/db.ts';
import { buildGateway } from '../serve/app.ts';
import { openBackend, type ServedModel } from '../serve/backends.ts';
import { Limiter } from '../serve/limiter.ts';
import { listenGateway } from '../serve/openai-server.ts';
import { chatsToTextFile } from '../train/quickstart.ts';
import { runTraining } from '../train/trainer.ts';
import type { StageConfigs } from './config.ts';

/**
 * The five stage bodies `loom run` chains. Each reads its config relative to the project folder and reports what
 * it wrote (paths relative to the project); skipping, hashing and registry records are run.ts's job.
 */
export interface StageContext {
  project: string;
  registry: Registry;
  log: (line: string) => void;
  threads?: number;
  /** Abort a long stage (Ctrl-C): training saves a checkpoint and returns. */
  signal?: AbortSignal;
}

export interface StageOutcome {
  summary: string;
  /** Runs the stage recorded itself (train runs): linked to the stage's run as children. */
  childRuns?: string[];
}

const at = (ctx: StageContext, p: string): string => resolve(ctx.project, p);

export async function runDataStage(ctx: StageContext, s: NonNullable<StageConfigs['data']>): Promise<StageOutcome> {
  const r = await runDataPipeline(at(ctx, s.config), { outDir: at(ctx, s.outputs[0] ?? 'out/data'), quiet: true });
  const c = r.counts;
  const splits = Object.entries(c.splits)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return { summary: `${c.input} records → ${c.output} clean rows (${splits}), ${c.dropped} dropped` };
}

/** Interrupted training leaves checkpoints: the next run resumes from the newest one instead of starting over. */
function hasCheckpoint(outputDir: string): boolean {
  const d = join(outputDir, 'checkpoints');
  return existsSync(d) && readdirSync(d).length > 0;
}

async function train(
  ctx: StageContext,
  file: string,
  overrides: string[],
  merge: boolean,
): Promise<{ runId: string; steps: number; loss?: number; interrupted: boolean }> {
  const l = loadConfig(at(ctx, file), trainConfigSchema, overrides);
  const outputDir = resolve(l.baseDir, l.config.output_dir);
  const resume = hasCheckpoint(outputDir);
  if (resume) ctx.log(`  ${file}: resuming from the newest checkpoint in ${join(outputDir, 'checkpoints')}`);
  const job = {
    config: l.config,
    baseDir: l.baseDir,
    quiet: true,
    merge,
    registry: ctx.registry,
    threads: ctx.threads,
  };
  let r: Awaited<ReturnType<typeof runTraining>>;
  try {
    r = await runTraining({ ...job, resume, signal: ctx.signal });
  } catch (e) {
    // a checkpoint of another config (the YAML changed since) cannot be resumed: start over, say so
    if (!(resume && e instanceof LoomError && e.code === 'CHECKPOINT')) throw e;
    ctx.log(`  ${file}: the checkpoint belongs to another config (${e.message}); training from the start`);
    r = await runTraining({ ...job, signal: ctx.signal });
  }
  return { runId: r.runId, steps: r.steps, loss: r.lastLoss, interrupted: r.interrupted };
}

export async function runTrainStage(ctx: StageContext, s: NonNullable<StageConfigs['train']>): Promise<StageOutcome> {
  const [trainFile, valFile] = s.inputs;
  const lines: string[] = [];
  const children: string[] = [];
  if (s.pretrain) {
    // No network to pull a base model: the template builds a tiny one from nothing on its own chats as text.
    const corpus = at(ctx, 'out/corpus');
    mkdirSync(corpus, { recursive: true });
    const n = chatsToTextFile(at(ctx, trainFile ?? 'out/data/train.jsonl'), join(corpus, 'train-text.jsonl'));
    chatsToTextFile(at(ctx, valFile ?? 'out/data/validation.jsonl'), join(corpus, 'validation-text.jsonl'));
    const pt = await train(ctx, s.pretrain, [], false);
    children.push(pt.runId);
    if (pt.interrupted) throw interrupted(s.pretrain);
    lines.push(`pretrain ${s.pretrain}: ${pt.steps} steps on ${n} chats as text, last train loss ${fmtLoss(pt.loss)}`);
  }
  const ft = await train(ctx, s.config, [], s.merge);
  children.push(ft.runId);
  if (ft.interrupted) throw interrupted(s.config);
  lines.push(`${s.config}: ${ft.steps} steps, last train loss ${fmtLoss(ft.loss)} (run ${ft.runId})`);
  return { summary: lines.join('\n'), childRuns: children };
}

const fmtLoss = (x: number | undefined): string => (x === undefined ? '–' : x.toFixed(3));

function interrupted(file: string): LoomError {
  return new LoomError('TRAIN_INVALID', `training of ${file} was interrupted; its checkpoint is kept`, {
    hint: 'run `loom run pipeline.yaml` again: it resumes from the checkpoint',
  });
}

export async function runEvalStage(ctx: StageContext, s: NonNullable<StageConfigs['eval']>): Promise<StageOutcome> {
  const { result, dir } = await runSuite(at(ctx, s.config), { outDir: at(ctx, s.outputs[0] ?? 'out/eval') });
  const lines = result.tasks.map((t) => {
    const m = Object.entries(t.summary)
      .slice(0, 3)
      .map(([k, v]) => `${k} ${v.score.toFixed(3)}`)
      .join('  ');
    return `${t.task} ${t.model}: ${m}`;
  });
  lines.push(`report: ${join(dir, 'report.html')}`);
  return { summary: lines.join('\n') };
}

export async function runExportStage(ctx: StageContext, s: NonNullable<StageConfigs['export']>): Promise<StageOutcome> {
  const r = exportArtefact({
    input: at(ctx, s.input),
    format: s.format,
    dtype: s.dtype ? normalizeDtype(s.dtype) : undefined,
    out: at(ctx, s.out),
  });
  return { summary: `${r.format} ${r.dtype} → ${r.artefact} (${r.files.length} files)` };
}

/**
 * The serve stage starts the gateway from serve.yaml on a free loopback port, sends one chat, writes the endpoint
 * record (out/serve/endpoint.json) and stops: a pipeline must end. `loom run --serve` starts it again to keep it.
 */
export async function runServeStage(ctx: StageContext, s: NonNullable<StageConfigs['serve']>): Promise<StageOutcome> {
  const l = loadServeConfig(at(ctx, s.config));
  const models: ServedModel[] = [];
  // Every model's prompt file is loaded, hosted ones too: a bad reference fails here, not on the first request.
  const prompts = l.config.models.flatMap((m) => {
    if (!m.prompt) return [];
    const p = loadPromptRef(m.prompt, l.baseDir).spec;
    return [`${m.name}: prompt ${promptKey(p)} (${p.few_shot.length} few-shot)`];
  });
  try {
    for (const m of l.config.models) {
      if (m.backend !== 'local') continue; // the smoke test stays offline: hosted models are not called here
      models.push(await openBackend(m, l.baseDir, new Limiter(1, 4)));
    }
    const record = (smoke: unknown) => {
      mkdirSync(at(ctx, 'out/serve'), { recursive: true });
      writeJsonAtomic(join(at(ctx, 'out/serve'), 'endpoint.json'), {
        config: at(ctx, s.config),
        models: l.config.models.map((m) => ({
          name: m.name,
          backend: m.backend,
          path: 'path' in m ? m.path : undefined,
          prompt: m.prompt,
          model: 'model' in m ? m.model : undefined,
        })),
        smoke,
      });
    };
    if (models.length === 0) {
      // The endpoint record still names the hosted models and their prompt versions (lineage), without a smoke reply.
      record(null);
      return {
        summary: [`${s.config}: no local model to smoke-test (hosted models only)`, ...prompts].join('\n'),
      };
    }
    const gw = buildGateway({ models, logLevel: 'silent' });
    const url = await listenGateway(gw, '127.0.0.1', 0);
    try {
      const model = s.model ?? models[0]!.name;
      const t0 = performance.now();
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model,
          messages: [{ role: 'user', content: s.prompt }],
          max_tokens: s.max_tokens,
          temperature: 0,
        }),
      });
      const ms = performance.now() - t0;
      const body = (await res.json()) as { choices?: { message?: { content?: string } }[] };
      if (!res.ok) {
        throw new LoomError('RUNTIME', `serve smoke request failed: HTTP ${res.status} ${JSON.stringify(body)}`, {
          file: at(ctx, s.config),
        });
      }
      const reply = body.choices?.[0]?.message?.content ?? '';
      record({ model, prompt: s.prompt, reply, latency_ms: Math.round(ms) });
      return {
        summary: [
          `${s.config}: started on ${url}, one chat to "${model}" in ${ms.toFixed(0)} ms: ${JSON.stringify(reply.slice(0, 80))}; stopped (keep it running with --serve)`,
          ...prompts,
        ].join('\n'),
      };
    } finally {
      await gw.drain();
    }
  } finally {
    for (const m of models) await m.close();
  }
}
