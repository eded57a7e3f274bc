/**
 * The Studio's HTTP surface (fastify): a JSON API under /api whose bodies and queries are zod-checked, calling the
 * same library functions as the CLI, and the pre-built front end (studio-dist/, built by `npm install`). Every
 * failure answers `{ error: { code, message, hint } }`; the pages are served from this machine only, no CDN.
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { describeIssues, loadConfig } from '../config/load.ts';
import { trainConfigSchema } from '../config/train.ts';
import { isLoomError, LoomError } from '../core/errors.ts';
import { STAGES } from '../pipeline/config.ts';
import { defaultRegistryPath, Registry } from '../registry/db.ts';
import type { Gateway } from '../serve/app.ts';
import { maskedExamples } from '../train/show-tokens.ts';
import { defaultStudioBuild } from './build.ts';
import { TrainJobs } from './jobs.ts';
import { PipelineJob, projectGraph, projectLineage, projectRuns, stageHistory } from './pipeline.ts';
import { monitorSamples, Playground } from './playground.ts';
import {
  datasetReport,
  datasetRows,
  evalResult,
  inProject,
  lineageEdges,
  scanProject,
  trainCurves,
  trainRunInfo,
} from './project.ts';

const PAGES = ['projects', 'datasets', 'training', 'evaluations', 'playground', 'monitor', 'lineage'] as const;

/**
 * The built front end: studio-dist/ at the package root (gitignored; `npm install` runs `prepare`, which builds it;
 * `loom studio` rebuilds it first when its sources changed, src/studio/build.ts).
 */
export function requireStudioBuild(dist = defaultStudioBuild().dist): string {
  if (!existsSync(join(dist, 'index.html'))) {
    throw new LoomError('INPUT_NOT_FOUND', `the Studio front end is not built (${dist} is missing)`, {
      hint: 'run `npm install` (its prepare step builds it) or `npm run build:studio` in the Loom folder / 前端未构建：请运行 npm install 或 npm run build:studio',
    });
  }
  return dist;
}

export interface StudioOptions {
  projectDir: string;
  /** Registry file; default <project>/.loom/registry.db (or $LOOM_REGISTRY). */
  registry?: string;
  /** Set by `loom serve --studio`: the Playground and Monitor use this gateway's models and metrics. */
  gateway?: Gateway;
  dist?: string;
}

export interface Studio {
  app: FastifyInstance;
  close(): Promise<void>;
}

const relPath = z.string().min(1).max(1000);
const pathQuery = z.object({ path: relPath }).strict();
const rowsQuery = z
  .object({
    path: relPath,
    which: z.enum(['rejects', 'train', 'validation', 'test']).default('rejects'),
    offset: z.coerce.number().int().min(0).default(0),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .strict();
const trainBody = z
  .object({
    config: relPath,
    overrides: z
      .array(
        z
          .string()
          .regex(/^[\w.]+=/, 'each override is key=value')
          .max(500),
      )
      .max(50)
      .default([]),
    resume: z.boolean().default(false),
  })
  .strict();
const tokensQuery = z
  .object({
    path: relPath,
    config: relPath.optional(),
    which: z.enum(['train', 'validation', 'test']).default('train'),
    n: z.coerce.number().int().min(1).max(50).default(5),
  })
  .strict();
const pipelineBody = z
  .object({
    config: relPath.default('pipeline.yaml'),
    from: z.enum(STAGES).optional(),
    only: z.enum(STAGES).optional(),
    force: z.boolean().default(false),
  })
  .strict();
const artefactQuery = z.object({ artefact: relPath }).strict();
const compareQuery = z.object({ a: relPath, b: relPath }).strict();
const chatBody = z
  .object({
    model: z.string().min(1).max(1000),
    messages: z
      .array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(20_000) }).strict())
      .min(1)
      .max(100),
    max_tokens: z.number().int().min(1).max(512).default(64),
  })
  .strict();
const monitorQuery = z.object({ url: z.string().max(500).optional() }).strict();

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new HttpError(400, 'bad_request', `${where}: ${describeIssues(r.error.issues)}`);
  return r.data;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/** A standalone Studio server (`loom studio`). */
export function buildStudio(opts: StudioOptions): Studio {
  const app = Fastify({ logger: false, bodyLimit: 1_048_576 });
  const close = mountStudio(app, opts, '');
  return {
    app,
    close: async () => {
      await app.close();
      await close();
    },
  };
}

/**
 * Registers the Studio's routes on any fastify app under `prefix` ('' or e.g. '/studio' inside `loom serve`);
 * returns what to call after the app closed. The routes live in their own encapsulated context, so the host app's
 * error and not-found handlers stay as they are.
 */
export function mountStudio(host: FastifyInstance, opts: StudioOptions, prefix: string): () => Promise<void> {
  const dir = resolve(opts.projectDir);
  const dist = requireStudioBuild(opts.dist);
  const regPath = opts.registry ?? defaultRegistryPath(join(dir, '.loom', 'registry.db'));
  const registry = new Registry(regPath);
  const jobs = new TrainJobs(registry);
  const pipeline = new PipelineJob(regPath);
  const playground = new Playground(dir, opts.gateway);
  host.register(
    async (app) => routes(app, { dir, dist, registry, jobs, pipeline, playground, gateway: opts.gateway, prefix }),
    { prefix },
  );
  return async () => {
    await pipeline.close();
    await jobs.close();
    await playground.close();
    registry.close();
  };
}

interface Ctx {
  dir: string;
  dist: string;
  registry: Registry;
  jobs: TrainJobs;
  pipeline: PipelineJob;
  playground: Playground;
  gateway?: Gateway;
  prefix: string;
}

function routes(app: FastifyInstance, ctx: Ctx): void {
  const { dir, dist, registry, jobs, pipeline, playground } = ctx;
  const opts = { gateway: ctx.gateway };
  const found = () => scanProject(dir);
  const inside = (p: string) => relative(dir, inProject(dir, p));
  // One heavy job at a time (the machine's cores go to it): a training job or a pipeline run.
  const busy = () => {
    if (jobs.status()?.status === 'running' || pipeline.status()?.status === 'running')
      throw new HttpError(409, 'busy', 'a training job or pipeline run is already going', 'stop it first');
  };

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof HttpError)
      return reply.code(err.status).send({ error: { code: err.code, message: err.message, hint: err.hint } });
    if (isLoomError(err)) {
      const status = err.code === 'INPUT_NOT_FOUND' || err.code === 'CONFIG_NOT_FOUND' ? 404 : 400;
      return reply.code(status).send({ error: err.toJSON() });
    }
    const e = err as Error & { statusCode?: number; code?: string };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    return reply
      .code(status)
      .send({ error: { code: status === 500 ? 'internal' : 'bad_request', message: e.message.slice(0, 500) } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.slice(0, 200)}` } }),
  );

  app.get('/api/project', async () => {
    const f = found();
    return { dir, ...f, runs: registry.listRuns().map((r) => ({ ...r, config: undefined })) };
  });
  app.get('/api/datasets', async () => ({ datasets: found().datasets }));
  app.get('/api/datasets/report', async (req) => datasetReport(dir, parse(pathQuery, req.query, 'query').path));
  app.get('/api/datasets/rows', async (req) => {
    const q = parse(rowsQuery, req.query, 'query');
    return {
      path: q.path,
      which: q.which,
      offset: q.offset,
      rows: await datasetRows(dir, q.path, q.which, q.offset, q.limit),
    };
  });

  app.get('/api/datasets/tokens', async (req) => {
    const q = parse(tokensQuery, req.query, 'query');
    const config = q.config ?? found().configs.find((c) => c.kind === 'train')?.path;
    if (!config)
      throw new HttpError(404, 'not_found', 'no train config in the project', 'the token view needs a train YAML');
    const { config: c, baseDir } = loadConfig(inProject(dir, config), trainConfigSchema);
    const file = join(inProject(dir, q.path), `${q.which}.jsonl`);
    const examples = await maskedExamples(c, baseDir, q.n, [file]);
    return { config, examples: examples.map((e) => ({ ...e, file: relative(dir, e.file) })) };
  });

  app.get('/api/training/runs', async () => ({
    runs: found().trainRuns,
    configs: found()
      .configs.filter((c) => c.kind === 'train')
      .map((c) => c.path),
    registry: registry.listRuns('train').map((r) => ({ ...r, config: undefined })),
  }));
  app.get('/api/training/run', async (req) => {
    const p = parse(pathQuery, req.query, 'query').path;
    return { ...trainRunInfo(dir, p), curves: await trainCurves(dir, p) };
  });
  app.post('/api/training/preview', async (req) => {
    const b = parse(trainBody, req.body, 'body');
    return jobs.preview(join(dir, inside(b.config)), b.overrides);
  });
  app.post('/api/training/start', async (req, reply) => {
    const b = parse(trainBody, req.body, 'body');
    busy();
    return reply.code(202).send(jobs.start(join(dir, inside(b.config)), b.overrides, b.resume));
  });
  app.post('/api/training/stop', async () => {
    if (jobs.status()?.status !== 'running') throw new HttpError(409, 'no_job', 'no training job is running');
    return jobs.stop();
  });
  app.get('/api/training/job', async () => {
    const job = jobs.status();
    return { job: job && { ...job, outputPath: undefined, run: relative(dir, job.outputPath) } };
  });

  app.get('/api/evaluations', async () => ({
    runs: found().evalRuns.map((p) => {
      try {
        const r = evalResult(dir, p);
        return { path: p, runId: r.runId, suite: r.suite, started: r.started, models: r.models.map((m) => m.id) };
      } catch (e) {
        return { path: p, error: (e as Error).message };
      }
    }),
  }));
  app.get('/api/evaluations/run', async (req) => evalResult(dir, parse(pathQuery, req.query, 'query').path));
  app.get('/api/evaluations/compare', async (req) => {
    const q = parse(compareQuery, req.query, 'query');
    const a = evalResult(dir, q.a);
    const b = evalResult(dir, q.b);
    const rows: { task: string; model: string; metric: string; a?: number; b?: number; delta?: number }[] = [];
    const key = (t: { task: string; model: string }) => `${t.task}\u0000${t.model}`;
    const bt = new Map(b.tasks.map((t) => [key(t), t]));
    for (const t of a.tasks) {
      const o = bt.get(key(t));
      for (const [metric, s] of Object.entries(t.summary)) {
        const other = o?.summary[metric]?.score;
        rows.push({
          task: t.task,
          model: t.model,
          metric,
          a: s.score,
          b: other,
          delta: other === undefined ? undefined : other - s.score,
        });
      }
    }
    return { a: q.a, b: q.b, rows };
  });

  app.get('/api/playground/models', async () => ({ models: playground.models(found()) }));
  app.post('/api/playground/chat', async (req, reply) => {
    const b = parse(chatBody, req.body, 'body');
    const f = found();
    const ac = new AbortController();
    // The response's close (not the request's: that fires once the body is read) means the browser went away.
    reply.raw.on('close', () => {
      if (!reply.raw.writableEnded) ac.abort();
    });
    // Errors before the first byte still answer JSON with a status; later ones travel as an error event.
    let started = false;
    const send = (ev: unknown) => {
      if (!started) {
        started = true;
        reply.hijack();
        reply.raw.writeHead(200, {
          'content-type': 'application/x-ndjson; charset=utf-8',
          'cache-control': 'no-store',
        });
      }
      reply.raw.write(`${JSON.stringify(ev)}\n`);
    };
    try {
      await playground.chat(f, b.model, b.messages, b.max_tokens, ac.signal, send);
    } catch (e) {
      if (!started) throw e;
      send({ type: 'error', error: isLoomError(e) ? e.toJSON() : { message: (e as Error).message } });
    }
    if (started) reply.raw.end();
    return reply;
  });

  app.get('/api/monitor', async (req) => {
    const q = parse(monitorQuery, req.query, 'query');
    return { source: q.url ?? (opts.gateway ? 'mounted' : null), samples: await monitorSamples(opts.gateway, q.url) };
  });
  app.get('/api/lineage', async () => ({ edges: lineageEdges(dir, found()), runs: projectRuns(registry, dir) }));
  app.get('/api/lineage/graph', async () => projectGraph(registry, dir));
  app.get('/api/lineage/of', async (req) =>
    projectLineage(registry, dir, parse(artefactQuery, req.query, 'query').artefact),
  );
  app.get('/api/pipeline', async () => ({
    configs: found()
      .configs.filter((c) => c.kind === 'pipeline')
      .map((c) => c.path),
    job: pipeline.status(),
    stages: stageHistory(registry, dir),
  }));
  app.post('/api/pipeline/start', async (req, reply) => {
    const b = parse(pipelineBody, req.body, 'body');
    busy();
    return reply
      .code(202)
      .send(pipeline.start(join(dir, inside(b.config)), b.config, { from: b.from, only: b.only, force: b.force }));
  });
  app.post('/api/pipeline/stop', async () => {
    if (pipeline.status()?.status !== 'running') throw new HttpError(409, 'no_job', 'no pipeline run is going');
    return pipeline.stop();
  });

  // Asset and API URLs in the pages are relative to <base>, so the same build works at / and under a prefix.
  const html = readFileSync(join(dist, 'index.html'), 'utf8').replace(
    '<base href="/" />',
    `<base href="${ctx.prefix}/" />`,
  );
  const index = () => html;
  app.get('/', async (req, reply) => {
    // `/studio` without the slash would resolve relative links against `/`.
    if (ctx.prefix && !req.url.split('?')[0]!.endsWith('/')) return reply.redirect(`${ctx.prefix}/`);
    return reply.type(MIME['.html']!).send(index());
  });
  for (const p of PAGES) app.get(`/${p}`, async (_req, reply) => reply.type(MIME['.html']!).send(index()));
  app.get('/assets/*', async (req, reply) => {
    const name = (req.params as { '*': string })['*'];
    const p = resolve(dist, 'assets', name);
    if (!p.startsWith(resolve(dist, 'assets')) || !existsSync(p))
      throw new HttpError(404, 'not_found', `no asset ${name.slice(0, 200)}`);
    return reply
      .type(MIME[extname(p)] ?? 'application/octet-stream')
      .header('cache-control', 'max-age=3600')
      .send(readFileSync(p));
  });
}

/** Listens and returns the URL `loom studio` prints. */
export async function listenStudio(s: Studio, host: string, port: number): Promise<string> {
  await s.app.listen({ host, port });
  const a = s.app.server.address();
  const p = typeof a === 'object' && a ? a.port : port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${p}`;
}
