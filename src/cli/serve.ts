import { basename, extname, resolve } from 'node:path';
import type { Command } from 'commander';
import { applyOverrides, validateConfig } from '../config/load.ts';
import { loadServeConfig, type ServeConfig, serveSchema } from '../config/serve.ts';
import { Registry } from '../registry/db.ts';
import { ApiKeys } from '../registry/keys.ts';
import { RequestLog } from '../registry/request-log.ts';
import { buildGateway, type Gateway } from '../serve/app.ts';
import { keyAuth } from '../serve/auth.ts';
import { openBackend, type ServedModel } from '../serve/backends.ts';
import { Limiter } from '../serve/limiter.ts';
import { formatMemoryEstimate, serveMemoryEstimate } from '../serve/memory.ts';
import { listenGateway } from '../serve/openai-server.ts';
import { mountStudio } from '../studio/app.ts';
import { defaultStudioBuild, ensureStudioBuild } from '../studio/build.ts';
import { parsePort } from './studio.ts';

export interface ServeStartOptions {
  host?: string;
  port?: number;
  overrides?: readonly string[];
  logLevel?: string;
  /** Registry holding the API keys (default .loom/registry.db or $LOOM_REGISTRY). */
  registry?: string;
  /** Called with the gateway before it listens: `--studio` mounts the Studio's routes here. */
  mount?: (gateway: Gateway) => (() => Promise<void>) | undefined;
  /** false = no request log whatever serve.yaml says (`loom serve --no-request-log`). */
  requestLog?: boolean;
}

export interface RunningServer {
  gateway: Gateway;
  /** Base URL without /v1, e.g. http://127.0.0.1:8000 */
  url: string;
  config: ServeConfig;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** A model folder or .gguf file becomes a one-model config; a .yaml/.yml/.json file is read as serve.yaml. */
export function resolveServeConfig(
  target: string,
  overrides: readonly string[] = [],
): { config: ServeConfig; baseDir: string } {
  if (/\.(ya?ml|json)$/i.test(target)) {
    const l = loadServeConfig(target, overrides);
    return { config: l.config, baseDir: l.baseDir };
  }
  // A model folder (Loom/HF weights, or an ONNX export folder: LocalChatModel runs its onnx/ file) is served by
  // the local engine; a .gguf file by llama.cpp. Either way under its file or folder name.
  const path = resolve(target);
  const gguf = /\.gguf$/i.test(path);
  const name =
    basename(path, gguf ? extname(path) : '')
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 64) || 'model';
  const raw = applyOverrides({ models: [{ name, backend: gguf ? 'gguf' : 'local', path }] }, overrides);
  return { config: validateConfig(serveSchema, raw, target), baseDir: process.cwd() };
}

/** Opens every configured model, builds the gateway and listens. The quickstart and tests call this directly. */
export async function startServe(target: string, opts: ServeStartOptions = {}): Promise<RunningServer> {
  const { config, baseDir } = resolveServeConfig(target, opts.overrides);
  let host = opts.host ?? config.host;
  const port = opts.port ?? config.port;
  const registry = new Registry(opts.registry);
  const keys = new ApiKeys(registry);
  // Keys are checked on every request once any exists; with none, nothing guards the models, so loopback only.
  const auth = keys.activeCount() > 0 ? keyAuth(keys) : undefined;
  const rl = config.request_log;
  const log =
    rl.enabled && opts.requestLog !== false
      ? new RequestLog(registry, { retentionDays: rl.retention_days, maxChars: rl.max_chars })
      : undefined;
  if (!auth) {
    process.stderr.write(
      `loom serve: no API key configured (loom keys create), serving without auth on loopback only${LOOPBACK.has(host) ? '' : `, not ${host}`} / 未配置 API 密钥，无鉴权，仅监听本机\n`,
    );
    if (!LOOPBACK.has(host)) host = '127.0.0.1';
  }
  const models: ServedModel[] = [];
  let gateway: Gateway | undefined;
  try {
    for (const m of config.models) {
      // An upstream's slots are its own concurrency (default 4, the provider client's default): requests past
      // that wait in the gateway's queue, where queue depth and 429s see them.
      const concurrency = m.backend === 'upstream' ? (m.concurrency ?? 4) : m.concurrency;
      const limiter = new Limiter(concurrency, config.limits.queue, (q, r) => {
        gateway?.metrics.queueDepth.set({ model: m.name }, q);
        gateway?.metrics.running.set({ model: m.name }, r);
      });
      models.push(await openBackend(m, baseDir, limiter));
    }
    gateway = buildGateway({
      models,
      limits: config.limits,
      logLevel: opts.logLevel,
      guard: config.guard,
      onLog: log ? (e) => log.append(e) : undefined,
      ...auth,
    });
    for (const e of serveMemoryEstimate(config, baseDir)) {
      gateway.metrics.modelMemory.set({ model: e.name, part: 'weights' }, e.weightBytes);
      gateway.metrics.modelMemory.set({ model: e.name, part: 'kv_cache' }, e.kvBytes);
    }
    const unmount = opts.mount?.(gateway);
    const url = await listenGateway(gateway, host, port);
    const gw = gateway;
    return {
      gateway: gw,
      url,
      config,
      close: async () => {
        await gw.drain();
        await unmount?.();
        // Request-log writes are queued with setImmediate after each reply: let the last ones land first.
        await new Promise((r) => setImmediate(r));
        for (const m of models) await m.close();
        registry.close();
      },
    };
  } catch (e) {
    for (const m of models) await m.close();
    registry.close();
    throw e;
  }
}

interface ServeCliOptions {
  host?: string;
  port?: string;
  dryRun?: boolean;
  logLevel: string;
  studio?: boolean;
  project: string;
  requestLog: boolean;
}

export function registerServe(program: Command): void {
  program
    .command('serve <target> [overrides...]')
    .description(
      'serve models over an OpenAI-compatible HTTP API (a model folder, ONNX export folder, .gguf file, or serve.yaml)',
    )
    .option('--host <host>', 'address to bind (default 127.0.0.1; loopback only while no API key exists)')
    .option('--port <port>', 'port (default 8000; 0 picks a free one)')
    .option('--dry-run', 'validate the config and print the memory estimate of the configured models, then exit')
    .option('--studio', 'also serve the Studio web UI at /studio (Playground and Monitor use these models)')
    .option('--project <dir>', 'project folder the Studio shows (with --studio)', '.')
    .option('--no-request-log', 'keep no request log in the registry (default: on, PII-redacted, 30-day retention)')
    .option('--log-level <level>', 'pino log level on stderr: fatal, error, warn, info, debug, silent', 'info')
    .addHelpText(
      'after',
      '\nPrints "listening on http://HOST:PORT" when ready; SIGTERM/SIGINT finish in-flight streams, then exit 0.\n\nExample:\n  $ loom serve out/quickstart/train/pretrain/model --port 8000\n  $ loom serve exports/model-Q8_0.gguf\n  $ loom serve serve.yaml limits.queue=8 limits.max_tokens=512\n  $ curl -s localhost:8000/v1/chat/completions -H content-type:application/json \\\n      -d \'{"model":"model","messages":[{"role":"user","content":"hi"}]}\'',
    )
    .action(async (target: string, overrides: string[], o: ServeCliOptions) => {
      const port = parsePort(o.port);
      if (o.dryRun) {
        const { config, baseDir } = resolveServeConfig(target, overrides);
        process.stdout.write(formatMemoryEstimate(serveMemoryEstimate(config, baseDir)));
        return;
      }
      // A stale front end (sources pulled since `npm install`) is rebuilt before the server starts.
      if (o.studio) await ensureStudioBuild(defaultStudioBuild());
      const mount = o.studio
        ? (gw: Gateway) => mountStudio(gw.app, { projectDir: resolve(o.project), gateway: gw }, '/studio')
        : undefined;
      const s = await startServe(target, {
        host: o.host,
        port,
        overrides,
        logLevel: o.logLevel,
        mount,
        requestLog: o.requestLog,
      });
      process.stdout.write(`listening on ${s.url}\n`);
      if (o.studio) process.stdout.write(`studio on ${s.url}/studio/\n`);
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        s.close().then(
          () => process.exit(0),
          (e) => {
            process.stderr.write(`loom serve: shutdown failed: ${(e as Error).message}\n`);
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
