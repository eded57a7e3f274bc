import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LoomError } from '../core/errors.ts';
import { readHfConfig } from '../models/config.ts';
import { folderFingerprint } from '../models/folder.ts';
import { adapterBaseDir, readPeftAdapter } from '../models/peft.ts';
import type { Registry } from '../registry/db.ts';

/** `loom adapter import <peft-dir>`: validate a PEFT adapter (e.g. from an emitted LLaMA-Factory/TRL job) and register it. */
export function importAdapter(
  dir: string,
  baseOverride?: string,
  registry?: Registry,
): { id: string; type: string; tensors: number; base?: string } {
  const abs = resolve(dir);
  const cfgPath = join(abs, 'adapter_config.json');
  if (!existsSync(cfgPath)) throw new LoomError('INPUT_NOT_FOUND', `no adapter_config.json in ${dir}`, { file: dir });
  const raw = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const named = typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : undefined;
  // base_model_name_or_path is a Hub id or a path relative to the adapter folder (PEFT's own saves may be absolute)
  const baseDir = baseOverride
    ? existsSync(join(baseOverride, 'config.json'))
      ? resolve(baseOverride)
      : undefined
    : adapterBaseDir(abs);
  const base = baseOverride ?? baseDir ?? named;
  const adapter = readPeftAdapter(abs, baseDir ? readHfConfig(join(baseDir, 'config.json')) : undefined);
  const h = createHash('sha256').update(readFileSync(join(abs, 'adapter_model.safetensors')));
  const id = `adapter-${h.digest('hex').slice(0, 12)}`;
  registry?.upsertRun({
    id,
    kind: 'adapter',
    status: 'imported',
    outputDir: abs,
    baseModel: base,
    baseModelHash: baseDir ? folderFingerprint(baseDir) : undefined,
    config: adapter.config,
    createdAt: new Date().toISOString(),
  });
  return { id, type: adapter.type, tensors: adapter.tensors.length, base };
}
