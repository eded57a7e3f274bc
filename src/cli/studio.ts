import { resolve } from 'node:path';
import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { buildStudio, listenStudio } from '../studio/app.ts';
import { defaultStudioBuild, ensureStudioBuild } from '../studio/build.ts';

export function parsePort(v: string | undefined): number | undefined {
  const port = v === undefined ? undefined : Number(v);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new LoomError('CONFIG_INVALID', `--port has an invalid value '${v}'`, {
      field: 'port',
      hint: 'a port number 0-65535',
    });
  }
  return port;
}

export function registerStudio(program: Command): void {
  program
    .command('studio')
    .description('the web UI: datasets, training, evaluations, playground, monitor and lineage of one project')
    .option('--port <port>', 'port (default 7860; 0 picks a free one)', '7860')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--project <dir>', 'project folder (default: the current folder)', '.')
    .addHelpText(
      'after',
      '\nPrints "listening on http://HOST:PORT" when ready; open it in a browser (?lang=zh-CN for Chinese).\nEverything is served from this machine: no CDN, no request leaves it. `loom serve --studio` mounts it at /studio.\n\nExample:\n  $ loom studio --project examples/customer-service --port 7860',
    )
    .action(async (o: { port: string; host: string; project: string }) => {
      // A stale front end (sources pulled since `npm install`) is rebuilt before the server starts.
      await ensureStudioBuild(defaultStudioBuild());
      const s = buildStudio({ projectDir: resolve(o.project) });
      const url = await listenStudio(s, o.host, parsePort(o.port) ?? 7860);
      process.stdout.write(`listening on ${url}\n`);
      const stop = () => {
        s.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
