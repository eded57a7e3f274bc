import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { loraAlpha, loraScale, loraTargets, type TrainConfig } from '../config/train.ts';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { Progress } from '../core/progress.ts';
import { loomVersion } from '../core/version.ts';
import { Engine, type HostTensor } from '../engine/index.ts';
import type { LlamaConfig } from '../models/config.ts';
import { createModelFolder, loadWeights, openModelFolder } from '../models/folder.ts';
import type { Float32Tensor } from '../models/safetensors.ts';
import type { Registry } from '../registry/db.ts';
import { TINY_SPECIALS } from '../tokenizer/tiny.ts';
import { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import { trainByteLevelBpe } from '../tokenizer/train-bpe.ts';
import {
  type Batch,
  chunkDocuments,
  collate,
  epochRows,
  groupRows,
  type PackedRow,
  type TokenizedExample,
  truncateExamples,
} from './batching.ts';
import {
  checkpointName,
  type Float32Named,
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type TrainState,
} from './checkpoint.ts';
import { encodeSftRows, encodeTextRows, readRows } from './data.ts';
import { buildTrainGraphs, type MethodOptions, type ParamInfo, type TrainGraphs } from './graph.ts';
import { lossChartHtml, MetricsLog } from './metrics.ts';
import { mergeLoraInto, writeLoraAdapter, writeMergedModel, writePrefixAdapter } from './peft.ts';
import { epochPermutation, Rng } from './rng.ts';
import { lrAt, resolveWarmup, type ScheduleOptions } from './schedule.ts';

/**
 * The training loop around the step graph: data → batches (deterministic in seed and epoch) → optimiser steps →
 * metrics, evaluation, checkpoints → artefacts (PEFT adapter, merged or full model folder, loss chart, lineage).
 * Library entry point: `runTraining(job)`; `loom train` is a thin shell over it.
 */
export interface TrainJob {
  config: TrainConfig;
  /** Relative paths in the config resolve against this folder. */
  baseDir: string;
  resume?: boolean;
  dryRun?: boolean;
  merge?: boolean;
  /** Set when the user pressed Ctrl-C: the loop saves a checkpoint and returns. */
  signal?: AbortSignal;
  registry?: Registry;
  /** Print lines (pre-flight, summary). Default: stderr. */
  log?: (line: string) => void;
  quiet?: boolean;
  /** Stop after this many optimiser steps in this process (tests of interruption). */
  stopAfterSteps?: number;
  threads?: number;
}

export interface Preflight {
  totalParams: number;
  trainableParams: number;
  trainableFraction: number;
  trainExamples: number;
  evalExamples: number;
  droppedRows: number;
  truncatedRows: number;
  batchesPerEpoch: number;
  stepsPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
  tokensPerEpoch: number;
  estimatedPeakBytes: number;
  availableBytes: number;
  measuredStepSeconds: number;
  estimatedEpochSeconds: number;
  quant?: { fp32Bytes: number; quantBytes: number; savedBytes: number; modules: number };
}

export interface TrainResult {
  runId: string;
  outputDir: string;
  preflight: Preflight;
  steps: number;
  firstLoss?: number;
  lastLoss?: number;
  initialEvalLoss?: number;
  bestEvalLoss?: number;
  interrupted: boolean;
  earlyStopped: boolean;
  outputs: string[];
  /** Final trainable tensors (tests compare them bit for bit). */
  params: Float32Named[];
}

interface Prepared {
  model: LlamaConfig;
  modelDir: string;
  weights: Map<string, Float32Tensor>;
  tok: LoomTokenizer;
  train: TokenizedExample[] | PackedRow[];
  evalRows: PackedRow[];
  isPacked: boolean;
  dropped: number;
  truncated: number;
  datasetHash: string;
  modelHash: string;
}

function configHash(c: TrainConfig): string {
  const { output_dir: _o, eval_steps: _e, save_steps: _s, logging_steps: _l, threads: _t, ...rest } = c;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

/** Fast model fingerprint: config.json plus each safetensors header and size (hashing every byte of a 10 GB model is minutes). */
export function modelFingerprint(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (f === 'config.json') h.update(readFileSync(p));
    if (f.endsWith('.safetensors')) {
      const buf = readFileSync(p);
      const hl = Number(buf.readBigUInt64LE(0));
      h.update(f)
        .update(buf.subarray(0, 8 + hl))
        .update(String(statSync(p).size));
      if (buf.length < 64 * 1024 * 1024) h.update(buf);
    }
  }
  return h.digest('hex');
}

async function prepare(job: TrainJob): Promise<Prepared> {
  const c = job.config;
  const modelDir = resolve(job.baseDir, c.model);
  if (c.stage === 'pt' && c.train_tokenizer && !existsSync(join(modelDir, 'config.json'))) {
    buildFromNothing(c, job.baseDir, modelDir);
  }
  const folder = openModelFolder(modelDir);
  const model = folder.config;
  folder.close();
  if (c.cutoff_len > model.maxPositionEmbeddings) {
    throw new LoomError(
      'TRAIN_INVALID',
      `cutoff_len ${c.cutoff_len} exceeds the model's max_position_embeddings ${model.maxPositionEmbeddings}`,
      {
        field: 'cutoff_len',
      },
    );
  }
  const weights = loadWeights(modelDir);
  if (!existsSync(join(modelDir, 'tokenizer.json'))) {
    throw new LoomError('MODEL_INVALID', `no tokenizer.json in ${modelDir}`, { file: modelDir });
  }
  const tok = LoomTokenizer.fromFolder(modelDir);
  const rows = readRows(c.dataset, job.baseDir, c.stage);
  let evalRowsRaw = c.eval_dataset ? readRows(c.eval_dataset, job.baseDir, c.stage).rows : [];
  let trainRows = rows.rows;
  if (c.max_samples) trainRows = trainRows.slice(0, c.max_samples);
  if (!c.eval_dataset && c.val_size > 0) {
    const perm = epochPermutation(trainRows.length, c.seed, -1);
    const nVal = Math.max(1, Math.round(trainRows.length * c.val_size));
    const valSet = new Set(perm.slice(0, nVal));
    evalRowsRaw = trainRows.filter((_, i) => valSet.has(i));
    trainRows = trainRows.filter((_, i) => !valSet.has(i));
  }
  let train: TokenizedExample[] | PackedRow[];
  let evalRows: PackedRow[];
  let dropped = 0;
  let truncated = 0;
  let isPacked = false;
  if (c.stage === 'pt') {
    const eos = tok.eos?.id;
    train = chunkDocuments(await encodeTextRows(tok, trainRows), c.cutoff_len, eos);
    evalRows = chunkDocuments(await encodeTextRows(tok, evalRowsRaw), c.cutoff_len, eos);
    isPacked = true;
  } else {
    const enc = await encodeSftRows(tok, trainRows, { template: c.template, trainOnPrompt: c.train_on_prompt });
    const t = truncateExamples(enc, c.cutoff_len);
    dropped = t.dropped.length;
    truncated = t.truncated;
    train = t.kept;
    const encEval = truncateExamples(
      await encodeSftRows(tok, evalRowsRaw, { template: c.template, trainOnPrompt: c.train_on_prompt }),
      c.cutoff_len,
    ).kept;
    evalRows = encEval.map((e, i) => ({ ids: e.ids, weights: e.weights, segments: e.ids.map(() => 1), sources: [i] }));
  }
  if (train.length === 0) {
    throw new LoomError('TRAIN_INVALID', 'no training examples left after cutoff_len', {
      field: 'cutoff_len',
      hint: `${dropped} rows were dropped because their prompt alone reaches cutoff_len; raise cutoff_len`,
    });
  }
  return {
    model,
    modelDir,
    weights,
    tok,
    train,
    evalRows,
    isPacked,
    dropped,
    truncated,
    datasetHash: rows.hash,
    modelHash: modelFingerprint(modelDir),
  };
}

/**
 * Pretraining from nothing: train a byte-level BPE tokenizer on the corpus (the tokenizer stage's trainer; the
 * `tokenizers` npm binding exposes `train(files)` but no vocabulary size or special tokens), then create a
 * random-init model of `model_preset` whose vocabulary is that tokenizer's.
 */
function buildFromNothing(c: TrainConfig, baseDir: string, modelDir: string): void {
  const rows = readRows(c.dataset, baseDir, 'pt').rows;
  const json = trainByteLevelBpe(
    rows.map((r) => r.text!),
    { vocabSize: c.tokenizer_vocab_size, specialTokens: TINY_SPECIALS, minFrequency: 2 },
  );
  const vocab = Object.keys((json.model as { vocab: Record<string, number> }).vocab).length;
  createModelFolder(modelDir, { preset: c.model_preset, seed: c.seed, overrides: { vocab_size: vocab } });
  writeFileAtomic(join(modelDir, 'tokenizer.json'), JSON.stringify(json));
}

function methodOptions(c: TrainConfig, packing: boolean): MethodOptions {
  return {
    method: c.finetuning_type,
    loraRank: c.lora_rank,
    loraScale: loraScale({ lora_rank: c.lora_rank, lora_alpha: loraAlpha(c), use_rslora: c.use_rslora }),
    loraDropout: c.lora_dropout,
    loraTargets: loraTargets(c),
    quantBlockSize: c.quantization_block_size,
    freezeLayers: c.freeze_trainable_layers,
    freezeModules: c.freeze_trainable_modules,
    numVirtualTokens: c.num_virtual_tokens,
    weightDecay: c.weight_decay,
    beta1: c.adam_beta1,
    beta2: c.adam_beta2,
    eps: c.adam_epsilon,
    maxGradNorm: c.max_grad_norm,
    packing,
  };
}

/** Batches of one epoch (rows already packed for pt; sft rows packed here when packing is on). */
function epochBatches(p: Prepared, c: TrainConfig, epoch: number): PackedRow[][] {
  if (p.isPacked) {
    const rows = p.train as PackedRow[];
    const perm = epochPermutation(rows.length, c.seed, epoch);
    return groupRows(
      perm.map((i) => rows[i]!),
      { batchSize: c.per_device_train_batch_size, batchTokens: c.batch_tokens },
    );
  }
  return epochRows(
    p.train as TokenizedExample[],
    {
      batchSize: c.per_device_train_batch_size,
      batchTokens: c.batch_tokens,
      packing: c.packing,
      cutoffLen: c.cutoff_len,
      seed: c.seed,
      shuffle: true,
    },
    epoch,
  );
}

function evalBatches(p: Prepared, c: TrainConfig): PackedRow[][] {
  return groupRows(p.evalRows, { batchSize: c.per_device_train_batch_size, batchTokens: c.batch_tokens });
}

function tensor(dtype: HostTensor['dtype'], dims: number[], data: HostTensor['data']): HostTensor {
  return { dtype, dims, data };
}

function scalar(x: number): HostTensor {
  return tensor('float32', [], Float32Array.of(x));
}

function batchFeeds(b: Batch, maskMode: 'none' | 'additive'): Record<string, HostTensor> {
  const f: Record<string, HostTensor> = {
    input_ids: tensor('int64', [b.batch, b.seq], b.inputIds),
    labels: tensor('int64', [b.batch, b.seq], b.targets),
    loss_weights: tensor('float32', [b.batch, b.seq], b.weights),
    position_ids: tensor('int64', [b.batch, b.seq], b.positionIds),
  };
  if (maskMode === 'additive') f.attention_bias = tensor('float32', [b.batch, 1, b.seq, b.seq], b.mask);
  return f;
}

/**
 * Peak memory estimate, calibrated on the SmolLM2-135M bench (batch 4 x 256, LoRA 8.0 GB / full 13.2 GB measured):
 * frozen weights once in JS and about twice per ONNX session (initializers + MLAS pre-packed copies), saved
 * activations per layer (hidden-size and MLP tensors, attention scores/probabilities), the logits and their
 * gradient chain, trainable tensors with AdamW state on both sides of the JS/ORT boundary, and 25 % arena slack.
 */
function estimatePeak(m: LlamaConfig, c: TrainConfig, graphs: TrainGraphs, sessions: number): number {
  const T = c.cutoff_len;
  const B = c.batch_tokens ? Math.max(1, Math.floor(c.batch_tokens / T)) : c.per_device_train_batch_size;
  const H = m.hiddenSize;
  const frozen =
    graphs.totalParams - (c.finetuning_type === 'full' || c.finetuning_type === 'freeze' ? 0 : graphs.trainableParams);
  const baseBytes = graphs.quant ? frozen * 4 - graphs.quant.fp32Bytes + graphs.quant.quantBytes : frozen * 4;
  const weights = baseBytes * (1 + 2 * sessions);
  const perLayerAct = B * T * (16 * H + 5 * m.intermediateSize) * 4 + B * m.numHeads * T * T * 4 * 4;
  const logits = B * T * m.vocabSize * 4 * 5;
  const state = graphs.trainableParams * 4 * 7;
  return Math.round((weights + m.numLayers * perLayerAct + logits + state) * 1.25);
}

const log = (job: TrainJob) => job.log ?? ((l: string) => process.stderr.write(`${l}\n`));

export async function runTraining(job: TrainJob): Promise<TrainResult> {
  const c = job.config;
  const say = log(job);
  const outputDir = resolve(job.baseDir, c.output_dir);
  if (job.merge && c.finetuning_type === 'qlora') {
    throw new LoomError('TRAIN_INVALID', 'cannot merge a QLoRA adapter into the base model', {
      field: 'finetuning_type',
      hint: 'the adapter was trained against 4-bit weights; merging into the full-precision base changes its outputs. Use the adapter with the base, or train with finetuning_type: lora to merge',
    });
  }
  if (job.merge && c.finetuning_type !== 'lora') {
    throw new LoomError('TRAIN_INVALID', `--merge applies to lora adapters (finetuning_type is ${c.finetuning_type})`, {
      field: 'finetuning_type',
      hint:
        c.finetuning_type === 'full' || c.finetuning_type === 'freeze'
          ? 'full and freeze tuning already write a complete model folder'
          : undefined,
    });
  }
  if (c.finetuning_type === 'prefix' && c.packing) {
    throw new LoomError('TRAIN_INVALID', 'prefix tuning cannot be combined with packing', {
      field: 'packing',
      hint: 'set packing: false (prefix key/values are shared by every sequence in a row)',
    });
  }

  const p = await prepare(job);
  const m = p.model;
  const packing = p.isPacked || c.packing;
  const mo = methodOptions(c, packing);
  const K = c.gradient_accumulation_steps;

  // resume state
  let resumeFrom: ReturnType<typeof loadCheckpoint> | undefined;
  if (job.resume) {
    const dir = latestCheckpoint(outputDir);
    if (!dir) {
      throw new LoomError('CHECKPOINT', `--resume: no checkpoint in ${join(outputDir, 'checkpoints')}`, {
        hint: 'run without --resume to start fresh',
      });
    }
    resumeFrom = loadCheckpoint(dir);
    if (resumeFrom.state.configHash !== configHash(c)) {
      throw new LoomError('CHECKPOINT', 'the checkpoint was made with a different config', {
        file: dir,
        hint: 'resume with the same config (only output_dir, eval_steps, save_steps, logging_steps and threads may change)',
      });
    }
  }
  const initial = new Map<string, Float32Array>((resumeFrom?.params ?? []).map((t) => [t.name, t.data]));
  const graphs = buildTrainGraphs(m, p.weights, mo, () => new Rng((c.seed ^ 0x5eed1234) >>> 0), initial, {
    accumulate: K > 1,
    evaluate: p.evalRows.length > 0,
  });

  const engine = await Engine.create({ threads: job.threads ?? c.threads ?? cpus().length });
  try {
    const loadOpts = { transfer: true, memArena: c.ort_memory_arena };
    const stepSession = await engine.load(graphs.step!, loadOpts);
    const gradSession = graphs.grad ? await engine.load(graphs.grad, loadOpts) : undefined;
    const evalSession = graphs.evaluate ? await engine.load(graphs.evaluate, loadOpts) : undefined;
    // the model protos hold a copy of every frozen weight: let them go once ORT has its own
    graphs.step = undefined;
    graphs.grad = undefined;
    graphs.evaluate = undefined;

    const firstEpoch = epochBatches(p, c, 0);
    const batchesPerEpoch = firstEpoch.length;
    const stepsPerEpoch = Math.max(1, Math.floor(batchesPerEpoch / K));
    const totalSteps = c.max_steps ?? Math.max(1, Math.ceil(c.num_train_epochs * stepsPerEpoch));
    const warmup = resolveWarmup(totalSteps, c.warmup_steps, c.warmup_ratio);
    const sched: ScheduleOptions = {
      type: c.lr_scheduler_type,
      lr: c.learning_rate,
      warmupSteps: warmup,
      totalSteps,
      minLr: c.min_lr,
    };

    // state
    const params = new Map<string, Float32Array>(graphs.params.map((q) => [q.name, new Float32Array(q.init)]));
    const mom1 = new Map<string, Float32Array>(graphs.params.map((q) => [q.name, new Float32Array(q.init.length)]));
    const mom2 = new Map<string, Float32Array>(graphs.params.map((q) => [q.name, new Float32Array(q.init.length)]));
    let state: TrainState = {
      step: 0,
      epoch: 0,
      batchInEpoch: 0,
      rng: new Rng(c.seed).state(),
      tokensSeen: 0,
      bestEvalLoss: null,
      bestStep: null,
      badEvals: 0,
      configHash: configHash(c),
      elapsed: 0,
    };
    if (resumeFrom) {
      for (const t of resumeFrom.m) mom1.set(t.name, t.data);
      for (const t of resumeFrom.v) mom2.set(t.name, t.data);
      state = resumeFrom.state;
    }
    const rng = new Rng(state.rng);

    const stateFeeds = (): Record<string, HostTensor> => {
      const f: Record<string, HostTensor> = {};
      for (const q of graphs.params) {
        f[q.name] = tensor('float32', q.dims, params.get(q.name)!);
        f[`exp_avg.${q.name}`] = tensor('float32', q.dims, mom1.get(q.name)!);
        f[`exp_avg_sq.${q.name}`] = tensor('float32', q.dims, mom2.get(q.name)!);
      }
      return f;
    };
    const paramFeeds = (): Record<string, HostTensor> => {
      const f: Record<string, HostTensor> = {};
      for (const q of graphs.params) f[q.name] = tensor('float32', q.dims, params.get(q.name)!);
      return f;
    };
    const extraFeeds = (b: Batch): Record<string, HostTensor> => {
      const f: Record<string, HostTensor> = {};
      if (graphs.quant) {
        f.qlora_nibble_mask = tensor('uint8', [], Uint8Array.of(15));
        f.qlora_nibble_shift = tensor('uint8', [], Uint8Array.of(4));
      }
      for (const d of graphs.dropout) {
        const n = b.batch * b.seq * d.features;
        const mask = new Float32Array(n);
        const keep = 1 / (1 - c.lora_dropout);
        for (let i = 0; i < n; i++) mask[i] = rng.next() < c.lora_dropout ? 0 : keep;
        f[d.name] = tensor('float32', [b.batch, b.seq, d.features], mask);
      }
      return f;
    };

    // the batches of the current epoch, rebuilt from the cursor
    let epochCache = { epoch: 0, batches: firstEpoch };
    const nextBatch = (): Batch => {
      if (state.batchInEpoch >= batchesPerEpoch) {
        state.epoch++;
        state.batchInEpoch = 0;
      }
      if (epochCache.epoch !== state.epoch)
        epochCache = { epoch: state.epoch, batches: epochBatches(p, c, state.epoch) };
      const rows = epochCache.batches[state.batchInEpoch++]!;
      return collate(rows);
    };

    const evaluate = async (): Promise<number | undefined> => {
      if (!evalSession) return undefined;
      let num = 0;
      let den = 0;
      const pf = paramFeeds();
      for (const rows of evalBatches(p, c)) {
        const b = collate(rows);
        if (b.weightSum === 0) continue;
        const feeds = { ...batchFeeds(b, graphs.maskMode), ...pf };
        if (graphs.quant) Object.assign(feeds, extraFeeds(b));
        const out = await evalSession.run(feeds, ['loss']);
        num += (out.loss!.data as Float32Array)[0]! * b.weightSum;
        den += b.weightSum;
      }
      return den > 0 ? num / den : undefined;
    };

    // one measured step (outputs discarded) for the pre-flight time estimate
    const probe = collate(firstEpoch[0]!);
    const probeFeeds = {
      ...batchFeeds(probe, graphs.maskMode),
      ...stateFeeds(),
      ...extraFeeds(probe),
      loss_scale: scalar(1),
      decay_factor: scalar(1),
      step_size: scalar(0),
      bias_correction2_sqrt: scalar(1),
      ...(K > 1 ? zeroGrads(graphs.params) : {}),
    };
    // dropout masks drawn for the probe must not shift the run's random stream
    rng.restore(state.rng);
    await stepSession.run(probeFeeds, ['loss']);
    const t0 = performance.now();
    await stepSession.run(probeFeeds, ['loss']);
    const measured = (performance.now() - t0) / 1000;

    const tokensPerEpoch = firstEpoch.reduce((a, rows) => a + rows.reduce((s, r) => s + r.ids.length, 0), 0);
    const sessions = 1 + (gradSession ? 1 : 0) + (evalSession ? 1 : 0);
    const pre: Preflight = {
      totalParams: graphs.totalParams,
      trainableParams: graphs.trainableParams,
      trainableFraction: graphs.trainableParams / graphs.totalParams,
      trainExamples: p.train.length,
      evalExamples: p.evalRows.length,
      droppedRows: p.dropped,
      truncatedRows: p.truncated,
      batchesPerEpoch,
      stepsPerEpoch,
      totalSteps,
      warmupSteps: warmup,
      tokensPerEpoch,
      estimatedPeakBytes: estimatePeak(m, c, graphs, sessions),
      availableBytes: totalmem(),
      measuredStepSeconds: measured,
      estimatedEpochSeconds: measured * batchesPerEpoch,
      quant: graphs.quant
        ? { ...graphs.quant, savedBytes: graphs.quant.fp32Bytes - graphs.quant.quantBytes }
        : undefined,
    };
    if (!job.quiet) say(formatPreflight(c, pre));
    if (pre.estimatedPeakBytes > pre.availableBytes) {
      throw new LoomError(
        'TRAIN_RESOURCES',
        `estimated peak memory ${gb(pre.estimatedPeakBytes)} exceeds this machine's ${gb(pre.availableBytes)}`,
        {
          hint: 'lower per_device_train_batch_size or cutoff_len, use lora/qlora, or emit the job for a GPU trainer (--emit llamafactory)',
        },
      );
    }
    const runId = `train-${createHash('sha256').update(outputDir).digest('hex').slice(0, 8)}-${state.configHash.slice(0, 8)}`;
    const result: TrainResult = {
      runId,
      outputDir,
      preflight: pre,
      steps: state.step,
      interrupted: false,
      earlyStopped: false,
      outputs: [],
      params: [],
    };
    if (job.dryRun) return result;

    // run folder
    writeFileAtomic(join(outputDir, 'config.yaml'), toYaml(c));
    const lineage = {
      run_id: runId,
      dataset_hash: p.datasetHash,
      base_model: p.modelDir,
      base_model_hash: p.modelHash,
      config_hash: state.configHash,
      code_version: loomVersion(),
      parents: parentRun(p.modelDir),
      created: new Date().toISOString(),
    };
    writeJsonAtomic(join(outputDir, 'lineage.json'), lineage);
    const metrics = new MetricsLog(join(outputDir, 'metrics.jsonl'));
    if (resumeFrom) metrics.truncateAfter(state.step);
    else metrics.truncateAfter(-1);
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

    const checkpoint = (): void => {
      const named = (src: Map<string, Float32Array>): Float32Named[] =>
        graphs.params.map((q) => ({ name: q.name, dims: q.dims, data: src.get(q.name)! }));
      state.rng = rng.state();
      saveCheckpoint(
        outputDir,
        { state, params: named(params), m: named(mom1), v: named(mom2) },
        c.save_total_limit,
        state.bestStep !== null ? [state.bestStep] : [],
      );
    };

    if (!resumeFrom && evalSession) {
      result.initialEvalLoss = await evaluate();
    }
    const progress = new Progress({ label: 'train', total: totalSteps, unit: 'steps', silent: job.quiet });
    progress.update(state.step);
    const wallStart = performance.now() - state.elapsed * 1000;
    let processSteps = 0;
    while (state.step < totalSteps) {
      const tStep = performance.now();
      const lr = lrAt(state.step, sched);
      const micro: Batch[] = [];
      for (let k = 0; k < K; k++) micro.push(nextBatch());
      const totalW = micro.reduce((a, b) => a + b.weightSum, 0) || 1;
      let accGrads: Map<string, Float32Array> | undefined;
      let lossNum = 0;
      for (let k = 0; k < K - 1; k++) {
        const b = micro[k]!;
        const out = await gradSession!.run(
          {
            ...batchFeeds(b, graphs.maskMode),
            ...paramFeeds(),
            ...extraFeeds(b),
            loss_scale: scalar(b.weightSum / totalW),
          },
          ['loss', ...graphs.params.map((q) => `grad.${q.name}`)],
        );
        lossNum += lossOf(out) * b.weightSum;
        accGrads ??= new Map(graphs.params.map((q) => [q.name, new Float32Array(q.init.length)]));
        for (const q of graphs.params) {
          const acc = accGrads.get(q.name)!;
          const gr = out[`grad.${q.name}`]!.data as Float32Array;
          for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + gr[i]!;
        }
      }
      const last = micro[K - 1]!;
      const t = state.step + 1;
      const bc1 = 1 - c.adam_beta1 ** t;
      const bc2 = 1 - c.adam_beta2 ** t;
      const feeds: Record<string, HostTensor> = {
        ...batchFeeds(last, graphs.maskMode),
        ...stateFeeds(),
        ...extraFeeds(last),
        loss_scale: scalar(last.weightSum / totalW),
        decay_factor: scalar(1 - lr * c.weight_decay),
        step_size: scalar(lr / bc1),
        bias_correction2_sqrt: scalar(Math.sqrt(bc2)),
      };
      if (K > 1) {
        for (const q of graphs.params) feeds[`grad_in.${q.name}`] = tensor('float32', q.dims, accGrads!.get(q.name)!);
      }
      // params, moments and accumulated grads are replaced by the outputs: hand their buffers over instead of copying
      const out = await stepSession.run(feeds, undefined, { transfer: true });
      lossNum += lossOf(out) * last.weightSum;
      for (const q of graphs.params) {
        params.set(q.name, out[`new.${q.name}`]!.data as Float32Array);
        mom1.set(q.name, out[`new_exp_avg.${q.name}`]!.data as Float32Array);
        mom2.set(q.name, out[`new_exp_avg_sq.${q.name}`]!.data as Float32Array);
      }
      const loss = lossNum / totalW;
      const gradNorm = (out.grad_norm!.data as Float32Array)[0]!;
      if (!Number.isFinite(loss)) {
        throw new LoomError('TRAIN_INVALID', `loss became ${loss} at step ${t}`, {
          hint: 'lower learning_rate, keep max_grad_norm > 0, or check the data for empty targets',
        });
      }
      state.step = t;
      processSteps++;
      const tokens = micro.reduce((a, b) => a + b.tokens, 0);
      state.tokensSeen += tokens;
      const dt = (performance.now() - tStep) / 1000;
      state.elapsed = (performance.now() - wallStart) / 1000;
      result.firstLoss ??= loss;
      result.lastLoss = loss;
      if (t % c.logging_steps === 0 || t === totalSteps) {
        const rec = {
          step: t,
          epoch: state.epoch + state.batchInEpoch / batchesPerEpoch,
          split: 'train' as const,
          loss,
          lr,
          grad_norm: gradNorm,
          tokens_per_s: tokens / dt,
          tokens: state.tokensSeen,
          rss_mb: Math.round(process.memoryUsage.rss() / 1048576),
          time: new Date().toISOString(),
        };
        metrics.append(rec);
        job.registry?.logMetrics(
          (['loss', 'lr', 'grad_norm', 'tokens_per_s', 'rss_mb'] as const).map((n) => ({
            runId,
            step: t,
            name: n,
            value: rec[n],
          })),
        );
      }
      progress.update(t, { loss: loss.toFixed(4), lr: lr.toExponential(2) });

      let stop = false;
      if (evalSession && c.eval_steps && (t % c.eval_steps === 0 || t === totalSteps)) {
        const el = (await evaluate())!;
        metrics.append({
          step: t,
          epoch: state.epoch,
          split: 'eval',
          eval_loss: el,
          eval_ppl: Math.exp(el),
          time: new Date().toISOString(),
        });
        job.registry?.logMetrics([
          { runId, step: t, split: 'eval', name: 'loss', value: el },
          { runId, step: t, split: 'eval', name: 'ppl', value: Math.exp(el) },
        ]);
        if (state.bestEvalLoss === null || el < state.bestEvalLoss) {
          state.bestEvalLoss = el;
          state.bestStep = t;
          state.badEvals = 0;
          checkpoint();
          writeJsonAtomic(join(outputDir, 'checkpoints', 'best.json'), {
            checkpoint: checkpointName(t),
            step: t,
            eval_loss: el,
          });
        } else {
          state.badEvals++;
          if (c.early_stopping_patience && state.badEvals >= c.early_stopping_patience) {
            stop = true;
            result.earlyStopped = true;
          }
        }
      }
      if (c.save_steps && t % c.save_steps === 0) checkpoint();
      if (job.signal?.aborted) {
        checkpoint();
        result.interrupted = true;
        break;
      }
      if (stop || (job.stopAfterSteps !== undefined && processSteps >= job.stopAfterSteps)) {
        if (!stop) {
          checkpoint();
          result.interrupted = true;
        }
        break;
      }
    }
    progress.done();
    result.steps = state.step;
    result.bestEvalLoss = state.bestEvalLoss ?? undefined;
    result.params = graphs.params.map((q) => ({ name: q.name, dims: q.dims, data: params.get(q.name)! }));
    if (!result.interrupted) {
      checkpoint();
      result.outputs.push(...writeArtefacts(job, p, graphs, params, outputDir));
    }
    const chart = join(outputDir, 'loss.html');
    writeFileAtomic(chart, lossChartHtml(metrics.read(), `loom train — ${basename(outputDir)}`));
    result.outputs.push(join(outputDir, 'metrics.jsonl'), chart, join(outputDir, 'lineage.json'));
    job.registry?.setStatus(runId, result.interrupted ? 'interrupted' : 'finished');
    await stepSession.release();
    await gradSession?.release();
    await evalSession?.release();
    return result;
  } finally {
    await engine.close();
  }
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

function zeroGrads(ps: readonly ParamInfo[]): Record<string, HostTensor> {
  const f: Record<string, HostTensor> = {};
  for (const q of ps) f[`grad_in.${q.name}`] = tensor('float32', q.dims, new Float32Array(q.init.length));
  return f;
}

function lossOf(out: Record<string, HostTensor>): number {
  return (out.loss!.data as Float32Array)[0]!;
}

function writeArtefacts(
  job: TrainJob,
  p: Prepared,
  graphs: TrainGraphs,
  params: Map<string, Float32Array>,
  outputDir: string,
): string[] {
  const c = job.config;
  const named = graphs.params.map((q) => ({ name: q.name, dims: q.dims, data: params.get(q.name)! }));
  const files: string[] = [];
  if (c.finetuning_type === 'lora' || c.finetuning_type === 'qlora') {
    files.push(
      ...writeLoraAdapter(join(outputDir, 'adapter'), named, {
        r: c.lora_rank,
        alpha: loraAlpha(c),
        dropout: c.lora_dropout,
        targetModules: loraTargets(c),
        useRslora: c.use_rslora,
        baseModel: p.modelDir,
      }),
    );
    if (job.merge) {
      const w = new Map<string, Float32Named>(
        [...p.weights].map(([n, t]) => [n, { name: n, dims: t.dims, data: t.data }]),
      );
      mergeLoraInto(
        w,
        named,
        loraScale({ lora_rank: c.lora_rank, lora_alpha: loraAlpha(c), use_rslora: c.use_rslora }),
      );
      files.push(...writeMergedModel(p.modelDir, join(outputDir, 'merged'), w));
    }
  } else if (c.finetuning_type === 'prefix') {
    files.push(...writePrefixAdapter(join(outputDir, 'adapter'), named[0]!, p.model, p.modelDir, c.num_virtual_tokens));
  } else {
    const w = new Map<string, Float32Tensor>(p.weights);
    for (const t of named) w.set(t.name, { dtype: 'float32', dims: t.dims, data: t.data });
    files.push(
      ...writeMergedModel(
        p.modelDir,
        join(outputDir, 'model'),
        new Map([...w].map(([n, t]) => [n, { name: n, dims: t.dims, data: t.data }])),
      ),
    );
  }
  return files;
}

export function gb(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

export function formatPreflight(c: TrainConfig, p: Preflight): string {
  const lines = [
    `pre-flight: ${c.stage}/${c.finetuning_type}`,
    `  parameters       total ${p.totalParams.toLocaleString('en-US')}, trainable ${p.trainableParams.toLocaleString('en-US')} (${(p.trainableFraction * 100).toFixed(3)} %)`,
    `  data             ${p.trainExamples} train rows, ${p.evalExamples} eval rows, ${p.droppedRows} dropped by cutoff_len, ${p.truncatedRows} truncated`,
    `  schedule         ${p.batchesPerEpoch} batches/epoch, ${p.stepsPerEpoch} steps/epoch, ${p.totalSteps} steps total, ${p.warmupSteps} warmup`,
    `  memory (est.)    peak ${gb(p.estimatedPeakBytes)} of ${gb(p.availableBytes)}`,
    `  time (measured)  ${p.measuredStepSeconds.toFixed(3)} s per batch → ~${p.estimatedEpochSeconds.toFixed(1)} s per epoch (${p.tokensPerEpoch} tokens)`,
  ];
  if (p.quant) {
    lines.push(
      `  qlora            ${p.quant.modules} projections as 4-bit blocks: ${gb(p.quant.fp32Bytes)} fp32 → ${gb(p.quant.quantBytes)} (saves ${gb(p.quant.savedBytes)})`,
    );
  }
  return lines.join('\n');
}
