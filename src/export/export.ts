/**
 * `loom export`: one source (model or run folder, see source.ts) -> one artefact per format.
 *   hf    merged HF folder: config.json, model.safetensors (fp32 / fp16), tokenizer files, generation_config.json,
 *         chat_template in tokenizer_config.json
 *   peft  the run's PEFT adapter folder (adapter_config.json + adapter_model.safetensors), copied as trained
 *   gguf  one `<name>-<dtype>.gguf` (F32, F16, Q8_0, Q4_0, Q4_K_M) + an Ollama `Modelfile`
 *   onnx  transformers.js / Optimum folder (onnx/model*.onnx) — see onnx/onnx.ts
 * Every export ends with a round-trip check (roundtrip.ts) whose verdict goes to DIR/lineage.json.
 *
 * API:
 *   normalizeDtype(s) -> ExportDtype
 *   exportArtefact(opts) -> ExportResult                   the writers only (sync)
 *   exportModel(opts) -> ExportResult & { check, lineage } writers + round-trip check + DIR/lineage.json
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { saveModelFolder } from '../models/folder.ts';
import { peftBaseName } from '../models/peft.ts';
import { type GgufDtype, ggufFromModel } from './gguf/llama.ts';
import { type OnnxQuantTuning, writeOnnx } from './onnx/onnx.ts';
import { type RoundTrip, roundTrip, writeLineage } from './roundtrip.ts';
import { type ExportSource, openExportSource } from './source.ts';

export type ExportFormat = 'hf' | 'peft' | 'onnx' | 'gguf';
export type ExportDtype = 'fp32' | 'fp16' | 'int8' | 'int4' | 'q4_k_m';
export const FORMATS: readonly ExportFormat[] = ['hf', 'peft', 'onnx', 'gguf'];

const DTYPE_ALIASES: Record<string, ExportDtype> = {
  fp32: 'fp32',
  f32: 'fp32',
  fp16: 'fp16',
  f16: 'fp16',
  int8: 'int8',
  q8_0: 'int8',
  int4: 'int4',
  q4_0: 'int4',
  q4_k_m: 'q4_k_m',
};

export function normalizeDtype(s: string): ExportDtype {
  const d = DTYPE_ALIASES[s.toLowerCase()];
  if (!d) {
    throw new LoomError('CONFIG_INVALID', `unknown --dtype ${s}`, {
      field: 'dtype',
      hint: 'one of fp32 (f32), fp16 (f16), int8 (q8_0), int4 (q4_0), q4_k_m',
    });
  }
  return d;
}

export interface ExportOptions {
  input: string;
  format: ExportFormat;
  dtype?: ExportDtype;
  out?: string;
  /** Skip the round-trip check (tests of the writers only). */
  skipCheck?: boolean;
  /**
   * ONNX int8/int4: MatMulNBits accuracy_level instead of the default 4 (int8 activations). For measuring the choice
   * (bench/export/formats.ts); the file stays loadable by transformers.js either way.
   */
  accuracyLevel?: 0 | 4;
  /** ONNX int8/int4: the other choices inside the file (scale storage and rule, vocabulary bits), for benches. */
  onnxQuant?: Omit<OnnxQuantTuning, 'accuracyLevel'>;
}

export interface ExportResult {
  format: ExportFormat;
  dtype: ExportDtype;
  outDir: string;
  /** The main artefact: the folder, or the .gguf file. */
  artefact: string;
  files: string[];
  source: ExportSource;
}

const GGUF_DTYPE: Partial<Record<ExportDtype, GgufDtype>> = {
  fp32: 'f32',
  fp16: 'f16',
  int8: 'q8_0',
  int4: 'q4_0',
  q4_k_m: 'q4_k_m',
};

function unsupported(format: ExportFormat, dtype: ExportDtype, allowed: string): never {
  throw new LoomError('NOT_IMPLEMENTED', `--format ${format} does not support --dtype ${dtype}`, {
    field: 'dtype',
    hint: `for ${format} use ${allowed}`,
  });
}

function copyTokenizerFiles(from: string, to: string, template: string | null): string[] {
  const out: string[] = [];
  for (const f of ['tokenizer.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt']) {
    if (existsSync(join(from, f))) {
      copyFileSync(join(from, f), join(to, f));
      out.push(f);
    }
  }
  const cfgPath = join(from, 'tokenizer_config.json');
  const cfg = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>) : {};
  // the chat template travels inside tokenizer_config.json, where transformers / transformers.js look for it
  if (template && !cfg.chat_template) cfg.chat_template = template;
  writeFileAtomic(join(to, 'tokenizer_config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  out.push('tokenizer_config.json');
  return out;
}

export function writeHf(src: ExportSource, outDir: string, dtype: ExportDtype, template: string | null): string[] {
  if (dtype !== 'fp32' && dtype !== 'fp16') unsupported('hf', dtype, 'fp32 or fp16');
  mkdirSync(outDir, { recursive: true });
  const files = saveModelFolder(outDir, {
    config: src.config,
    weights: src.weights,
    dtype: dtype === 'fp16' ? 'float16' : 'float32',
    generationConfig: Object.keys(src.generationConfig).length ? src.generationConfig : undefined,
  });
  return [...files, ...copyTokenizerFiles(src.tokenizerDir, outDir, template)];
}

function writePeft(src: ExportSource, outDir: string): string[] {
  if (!src.adapterDir) {
    throw new LoomError('INPUT_FORMAT', 'this source has no PEFT adapter', {
      file: src.modelDir,
      hint: 'give the output folder of a `loom train` run with finetuning_type lora, qlora or prefix',
    });
  }
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  for (const f of readdirSync(src.adapterDir)) {
    copyFileSync(join(src.adapterDir, f), join(outDir, f));
    files.push(f);
  }
  // base_model_name_or_path relative to the adapter folder must still point at the base from the new place
  const cfgPath = join(outDir, 'adapter_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const named = cfg.base_model_name_or_path;
  const base = typeof named === 'string' ? resolve(src.adapterDir, named) : '';
  if (base && existsSync(join(base, 'config.json')) && peftBaseName(outDir, base) !== named) {
    writeJsonAtomic(cfgPath, { ...cfg, base_model_name_or_path: peftBaseName(outDir, base) });
  }
  return files;
}

/** Ollama Modelfile: FROM the .gguf, the chat template is read from the GGUF itself; stops and greedy defaults. */
export function modelfile(gguf: string, stops: readonly string[]): string {
  const lines = [
    `FROM ./${gguf}`,
    ...stops.map((s) => `PARAMETER stop ${JSON.stringify(s)}`),
    'PARAMETER temperature 0',
    '',
  ];
  return lines.join('\n');
}

export function modelName(src: ExportSource): string {
  return basename(src.run?.dir ?? src.modelDir).replace(/[^A-Za-z0-9._-]+/g, '-') || 'model';
}

export function writeGguf(src: ExportSource, outDir: string, dtype: ExportDtype): { file: string; files: string[] } {
  const gd = GGUF_DTYPE[dtype];
  if (!gd) unsupported('gguf', dtype, 'fp32, fp16, int8 (q8_0), int4 (q4_0) or q4_k_m');
  mkdirSync(outDir, { recursive: true });
  const name = modelName(src);
  const { writer } = ggufFromModel(src.config, src.weights, src.tokenizerDir, gd, name);
  const file = `${name}-${gd.toUpperCase()}.gguf`;
  writer.write(join(outDir, file));
  const stops = stopStrings(src.tokenizerDir);
  writeFileAtomic(join(outDir, 'Modelfile'), modelfile(file, stops));
  return { file: join(outDir, file), files: [file, 'Modelfile'] };
}

/** The end-of-turn strings of the vocabulary, for runtimes configured by text (Ollama). */
function stopStrings(tokDir: string): string[] {
  const p = join(tokDir, 'tokenizer.json');
  const j = JSON.parse(readFileSync(p, 'utf8')) as { added_tokens?: { content: string }[] };
  const known = ['<|im_end|>', '<|eot_id|>', '<|end_of_text|>', '<|endoftext|>', '</s>'];
  const have = new Set((j.added_tokens ?? []).map((a) => a.content));
  return known.filter((k) => have.has(k));
}

export function defaultOutDir(src: ExportSource, format: ExportFormat, dtype: ExportDtype): string {
  const root = src.run?.dir ?? src.modelDir;
  return join(root, 'export', `${format}-${dtype}`);
}

export function exportArtefact(opts: ExportOptions): ExportResult {
  const src = openExportSource(opts.input);
  const dtype = opts.dtype ?? (opts.format === 'gguf' ? 'int8' : 'fp32');
  const outDir = resolve(opts.out ?? defaultOutDir(src, opts.format, dtype));
  if (opts.format === 'hf') {
    const files = writeHf(src, outDir, dtype, null);
    return { format: 'hf', dtype, outDir, artefact: outDir, files, source: src };
  }
  if (opts.format === 'peft') {
    if (dtype !== 'fp32') unsupported('peft', dtype, 'fp32 (the adapter is copied as trained)');
    return { format: 'peft', dtype, outDir, artefact: outDir, files: writePeft(src, outDir), source: src };
  }
  if (opts.format === 'gguf') {
    const { file, files } = writeGguf(src, outDir, dtype);
    return { format: 'gguf', dtype, outDir, artefact: file, files, source: src };
  }
  if (opts.format === 'onnx') {
    const files = writeOnnx(src, outDir, dtype, (to) => copyTokenizerFiles(src.tokenizerDir, to, null), {
      accuracyLevel: opts.accuracyLevel,
      ...opts.onnxQuant,
    });
    return { format: 'onnx', dtype, outDir, artefact: outDir, files, source: src };
  }
  throw new LoomError('NOT_IMPLEMENTED', `--format ${opts.format} is not available yet`, {
    field: 'format',
    hint: `one of ${FORMATS.join(', ')}`,
  });
}

export interface CheckedExport extends ExportResult {
  check: RoundTrip | { checked: 'none'; reason: string };
  lineage: string;
}

/** Writes the artefact, reads it back for the round-trip check, and records both in DIR/lineage.json. */
export async function exportModel(opts: ExportOptions): Promise<CheckedExport> {
  const r = exportArtefact(opts);
  const check = opts.skipCheck ? { checked: 'none' as const, reason: 'skipped' } : await roundTrip(r);
  const lineage = writeLineage(r, check);
  return { ...r, files: [...r.files, 'lineage.json'], check, lineage };
}
