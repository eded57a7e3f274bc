import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread on a TypeScript module. Loom runs from source under tsx, and a worker does not inherit
 * the parent's loader, so the worker first registers tsx (when it is installed) and then imports the module.
 */
export function spawnTsWorker(moduleUrl: URL, workerData: unknown): Worker {
  const target = moduleUrl.href;
  let tsxApi: string | undefined;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    tsxApi = undefined;
  }
  const boot = tsxApi
    ? `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(target)}); });`
    : `import(${JSON.stringify(target)});`;
  return new Worker(boot, { eval: true, workerData });
}
