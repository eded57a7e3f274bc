import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type CheckedExport, exportModel } from './export.ts';

/**
 * Quickstart `export` stage: the LoRA run of the train stage (its adapter merged into the pretrained base, as
 * `loom train --merge` does) exported as GGUF Q8_0 (llama.cpp / Ollama) and ONNX int8 (transformers.js), each
 * with its round-trip verdict against the fp32 model.
 */
export async function exportStage(outDir: string): Promise<{ stage: string; summary: string; outputs: string[] }> {
  const run = resolve(outDir, 'train', 'lora');
  if (
    !['adapter/adapter_config.json', 'merged/config.json', 'model/config.json'].some((f) => existsSync(join(run, f)))
  ) {
    return { stage: 'export', summary: 'skipped: needs the train stage’s LoRA run', outputs: [] };
  }
  const dir = resolve(outDir, 'export');
  const done: CheckedExport[] = [];
  done.push(await exportModel({ input: run, format: 'gguf', dtype: 'int8', out: join(dir, 'gguf-q8_0') }));
  done.push(await exportModel({ input: run, format: 'onnx', dtype: 'int8', out: join(dir, 'onnx-int8') }));
  const lines = done.map((r) => {
    const c = r.check;
    const what = r.format === 'gguf' ? 'GGUF Q8_0' : 'ONNX int8 (onnx/model_quantized.onnx)';
    if (!('verdict' in c)) return `${what}: ${r.artefact} (round trip not checked: ${c.reason})`;
    return (
      `${what}: ${r.artefact}\n  round trip ${c.verdict}: greedy agreement ${(c.greedy_agreement * 100).toFixed(0)}% ` +
      `over ${c.greedy_reference.length} tokens, max |Δ logit| ${c.max_abs_logit_diff.toExponential(2)} vs fp32, ` +
      `template ${c.template_identical ? 'same' : 'DIFFERENT'}, stops ${c.stops_identical ? 'same' : 'DIFFERENT'}`
    );
  });
  return { stage: 'export', summary: lines.join('\n'), outputs: done.flatMap((r) => [r.artefact, r.lineage]) };
}
