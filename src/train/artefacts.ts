import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { loomVersion } from '../core/version.ts';
import { toHfConfig } from '../models/config.ts';
import { mergeLoraInto, writeLoraAdapter, writeMergedModel, writePrefixAdapter } from '../models/peft.ts';
import type { Float32Named } from '../models/safetensors.ts';
import { lossChartHtml, MetricsLog } from './metrics.ts';
import type { MethodOptions } from './options.ts';
import type { Prepared } from './prepare.ts';
import type { TrainJob } from './trainer.ts';

/**
 * Training stage 4, artefacts: the run folder (config.yaml, lineage.json, metrics.jsonl, registry row) opened before
 * the first step, and after the last one the PEFT adapter, merged or full model folder and the loss chart.
 */
export interface OpenRun {
  runId: string;
  metrics: MetricsLog;
}

/** Run id: stable in the output folder and the config, so a resumed run keeps its id. */
export function runIdOf(outputDir: string, configHash: string): string {
  return `train-${createHash('sha256').update(outputDir).digest('hex').slice(0, 8)}-${configHash.slice(0, 8)}`;
}

/** Writes config.yaml and lineage.json, opens metrics.jsonl (cut back to the resumed step) and registers the run. */
export function openRun(
  job: TrainJob,
  p: Prepared,
  outputDir: string,
  configHash: string,
  resumedAt: number | undefined,
): OpenRun {
  const c = job.config;
  const runId = runIdOf(outputDir, configHash);
  writeFileAtomic(join(outputDir, 'config.yaml'), toYaml(c));
  const lineage = {
    run_id: runId,
    dataset_hash: p.datasetHash,
    base_model: p.modelDir,
    base_model_hash: p.modelHash,
    config_hash: configHash,
    code_version: loomVersion(),
    parents: parentRun(p.modelDir),
    created: new Date().toISOString(),
  };
  writeJsonAtomic(join(outputDir, 'lineage.json'), lineage);
  const metrics = new MetricsLog(join(outputDir, 'metrics.jsonl'));
  metrics.truncateAfter(resumedAt ?? -1);
  job.registry?.upsertRun({
    id: runId,
    kind: 'train',
    status: 'running',
    outputDir,
    datasetHash: p.datasetHash,
    baseModelHash: p.modelHash,
    baseModel: p.modelDir,
    config: c,
    parentId: lineage.parents[0],
    createdAt: lineage.created,
  });
  return { runId, metrics };
}

/** The loss chart and the fixed run files, listed after the artefacts. */
export function closeRun(outputDir: string, run: OpenRun): string[] {
  const chart = join(outputDir, 'loss.html');
  writeFileAtomic(chart, lossChartHtml(run.metrics.read(), `loom train — ${basename(outputDir)}`));
  return [join(outputDir, 'metrics.jsonl'), chart, join(outputDir, 'lineage.json')];
}

/** A base model written by an earlier Loom run (`<run>/model` or `<run>/merged`) names that run as the parent. */
function parentRun(modelDir: string): string[] {
  const f = join(modelDir, '..', 'lineage.json');
  if (!existsSync(f)) return [];
  try {
    const id = (JSON.parse(readFileSync(f, 'utf8')) as { run_id?: string }).run_id;
    return id ? [id] : [];
  } catch {
    return [];
  }
}

export function writeArtefacts(
  job: TrainJob,
  p: Prepared,
  mo: MethodOptions,
  named: readonly Float32Named[],
  outputDir: string,
): string[] {
  const files: string[] = [];
  if (p.cls) return writeClassifier(p, mo, named, outputDir);
  if (mo.method === 'lora' || mo.method === 'qlora') {
    const lora = mo.lora;
    files.push(...writeLoraAdapter(join(outputDir, 'adapter'), named, adapterConfig(mo.lora, p.modelDir)));
    if (job.merge) {
      const w = namedWeights(p.weights);
      mergeLoraInto(w, named, lora.scale);
      files.push(...writeMergedModel(p.modelDir, join(outputDir, 'merged'), w));
    }
  } else if (mo.method === 'prefix') {
    files.push(...writePrefixAdapter(join(outputDir, 'adapter'), named[0]!, p.model, p.modelDir, mo.numVirtualTokens));
  } else {
    const w = namedWeights(p.weights);
    for (const t of named) w.set(t.name, t);
    files.push(...writeMergedModel(p.modelDir, join(outputDir, 'model'), w));
  }
  return files;
}

/** The base weights keyed by name, in the named form the merge and the folder writer take (no copy of the data). */
function namedWeights(weights: Prepared['weights']): Map<string, Float32Named> {
  return new Map([...weights].map(([n, t]) => [n, { name: n, dims: t.dims, data: t.data }]));
}

/** PEFT adapter_config fields of a LoRA run. */
function adapterConfig(lora: Extract<MethodOptions, { lora: unknown }>['lora'], baseModel: string) {
  return {
    r: lora.rank,
    alpha: lora.alpha,
    dropout: lora.dropout,
    targetModules: lora.targets,
    useRslora: lora.useRslora,
    baseModel,
  };
}

/**
 * Stage cls: always a complete HF classification folder in `model/` (LoRA merged in, the trained score.weight,
 * config.json with the ForSequenceClassification class and id2label/label2id), so `loom eval cls`, the guard and
 * transformers' AutoModelForSequenceClassification load it as is. LoRA runs also write the PEFT adapter (SEQ_CLS,
 * modules_to_save score).
 */
function writeClassifier(p: Prepared, mo: MethodOptions, named: readonly Float32Named[], outputDir: string): string[] {
  const files: string[] = [];
  const w = namedWeights(p.weights);
  if (mo.method === 'lora' || mo.method === 'qlora') {
    const lora = mo.lora;
    files.push(
      ...writeLoraAdapter(join(outputDir, 'adapter'), named, { ...adapterConfig(lora, p.modelDir), seqCls: true }),
    );
    mergeLoraInto(w, named, lora.scale);
  }
  for (const t of named) if (!/\.lora_[AB]\.weight$/.test(t.name)) w.set(t.name, { ...t, name: t.name });
  const dir = join(outputDir, 'model');
  files.push(...writeMergedModel(p.modelDir, dir, w));
  writeJsonAtomic(join(dir, 'config.json'), toHfConfig(p.model));
  return files;
}
