import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { type ExportFormat, exportModel, FORMATS, normalizeDtype } from '../export/export.ts';

const VERDICT_ZH = { identical: '一致', close: '接近（贪心输出一致）', differs: '不一致' } as const;

/** `loom export <run-or-model-dir> --format hf|peft|onnx|gguf [--dtype …] [--out DIR]` */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description(
      'write a trained model for other runtimes: merged HF folder, PEFT adapter, ONNX (transformers.js), GGUF (llama.cpp / Ollama); checks the round trip',
    )
    .argument('<run-or-model-dir>', 'a model folder (config.json) or a `loom train` output folder')
    .requiredOption('--format <format>', `one of ${FORMATS.join(', ')}`)
    .option('--dtype <dtype>', 'fp32|f32, fp16|f16, int8|q8_0, int4|q4_0, q4_k_m (default: gguf int8, others fp32)')
    .option('--out <dir>', 'output folder (default: <input>/export/<format>-<dtype>)')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom export out/quickstart/train --format gguf --dtype q8_0 --out out/gguf\n  $ loom export out/quickstart/train --format onnx --dtype int8\n  $ loom export models/tiny --format hf --dtype fp16',
    )
    .action(async (input: string, opts: { format: string; dtype?: string; out?: string }) => {
      if (!FORMATS.includes(opts.format as ExportFormat)) {
        throw new LoomError('CONFIG_INVALID', `unknown --format ${opts.format}`, {
          field: 'format',
          hint: `one of ${FORMATS.join(', ')} / 可选：${FORMATS.join('、')}`,
        });
      }
      const r = await exportModel({
        input,
        format: opts.format as ExportFormat,
        dtype: opts.dtype ? normalizeDtype(opts.dtype) : undefined,
        out: opts.out,
      });
      process.stdout.write(`exported ${r.format} (${r.dtype}) → ${r.artefact}\n`);
      for (const f of r.files) process.stdout.write(`  ${f}\n`);
      const c = r.check;
      if (!('verdict' in c)) {
        process.stdout.write(`round-trip: not checked (${c.reason}) / 未校验\n`);
      } else {
        process.stdout.write(
          `round-trip (${c.checked}): ${c.verdict} / ${VERDICT_ZH[c.verdict]} — max |Δ logit| ${c.max_abs_logit_diff.toExponential(2)}, ` +
            `greedy agreement vs fp32 ${(c.greedy_agreement * 100).toFixed(0)}% over ${c.greedy_reference.length} tokens ` +
            `(free-running prefix ${(c.greedy_prefix_agreement * 100).toFixed(0)}%), ` +
            `template ${c.template_identical ? 'same' : 'DIFFERENT'}, stops ${c.stops_identical ? 'same' : 'DIFFERENT'}\n`,
        );
      }
      process.stdout.write(`lineage → ${r.lineage}\n`);
    });
}
