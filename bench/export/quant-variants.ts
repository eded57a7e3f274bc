/**
 * The choices inside Loom's int8/int4 ONNX files, measured against each other and against llama.cpp's Q8_0/Q4_0 on
 * the same weights in one run (SmolLM2-135M shape, random weights): file size, decode tokens/s (Loom's engine on
 * the file, resident KV cache) and perplexity of the fp32 model's own greedy continuation. Variants: block scales
 * stored as float32 or float16 (behind a Cast ORT folds at load), the scale rule (signed max as Q4_0, amax/127 as
 * Q8_0), 8-bit vocabulary matrices in an int4 file (llama.cpp keeps its tied table at Q6_K in a Q4_0 file), and
 * accuracy_level 0 for ppl only (fp32 activations: how much of the gap is activation rounding).
 * Each measurement is its own child process; llama.cpp through bench/export/formats.ts's own llama.cpp side.
 * Usage: npx tsx bench/export/quant-variants.ts [threads] [--layers N] [--ppl-tokens N] [--only int8|int4]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peakRssMb } from '../peak-rss.ts';
import { textPerplexity } from './ppl.ts';

const args = process.argv.slice(2);
const opt = (name: string, d: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const threads = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
const layers = opt('--layers', 30);
const pplTokens = opt('--ppl-tokens', 128);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const PROMPT = 64;
const NEW = 32;
const side = process.env.LOOM_VARIANT_SIDE;
const prompt = (V: number): number[] => Array.from({ length: PROMPT }, (_, i) => (i * 7919 + 13) % V);

async function loomSide(dir: string, file: string, time: boolean, evalPath: string | undefined) {
  const { CausalLM } = await import('../../src/generate/causal-lm.ts');
  const lm = await CausalLM.load(dir, { threads, file });
  const V = lm.config.vocabSize;
  const p = prompt(V);
  const greedy = async (n: number) => {
    const mask = p.map(() => 1);
    const out: number[] = [];
    let r = await lm.decode([p], [mask], lm.emptyCache(1));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      mask.push(1);
      out.push(r.next[0]!);
      r = await lm.decode([[r.next[0]!]], [mask], r.cache);
    }
    const s = (performance.now() - t0) / 1000;
    await lm.releaseCache(r.cache);
    return { out, s };
  };
  const res: Record<string, number | string> = {};
  if (time) {
    await greedy(2);
    let best = Infinity;
    for (let i = 0; i < 2; i++) best = Math.min(best, (await greedy(NEW)).s);
    res.decode_tokens_per_s = +(NEW / best).toFixed(1);
  }
  const text = evalPath
    ? (JSON.parse(readFileSync(evalPath, 'utf8')) as number[])
    : [...p, ...(await greedy(pplTokens)).out];
  res.ppl = +textPerplexity(await lm.forward([text]), text, PROMPT, V).toFixed(3);
  if (!evalPath) res.text = text.join(',');
  await lm.close();
  return res;
}

if (side === 'loom') {
  const [dir, file, time, evalPath] = args.slice(-4);
  const r = await loomSide(dir!, file!, time === '1', evalPath === '-' ? undefined : evalPath);
  console.log(JSON.stringify({ ...r, peak_rss_mb: peakRssMb() }));
} else {
  const { presetConfig } = await import('../../src/models/config.ts');
  const { newModel, saveModelFolder } = await import('../../src/models/folder.ts');
  const { tinyTokenizerFiles } = await import('../../src/tokenizer/tiny.ts');
  const { exportArtefact } = await import('../../src/export/export.ts');
  const { ONNX_FILES } = await import('../../src/export/onnx/onnx.ts');
  const work = mkdtempSync(join(tmpdir(), 'loom-bench-qvar-'));
  const emit = (o: Record<string, unknown>) => console.log(JSON.stringify({ bench: 'export.quant-variants', ...o }));
  const last = (out: string) => JSON.parse(out.trim().split('\n').pop()!) as Record<string, number | string>;
  const loom = (dir: string, file: string, time: boolean, evalPath: string) =>
    last(
      execFileSync(
        process.execPath,
        ['--import', 'tsx', import.meta.filename, String(threads), dir, file, time ? '1' : '0', evalPath],
        { env: { ...process.env, LOOM_VARIANT_SIDE: 'loom' }, encoding: 'utf8', maxBuffer: 1 << 26 },
      ),
    );
  try {
    const cfg = presetConfig('smollm2-135m', { num_hidden_layers: layers });
    const dir = join(work, 'model');
    saveModelFolder(dir, { config: cfg, weights: newModel(cfg, 1), tokenizerFiles: tinyTokenizerFiles() });
    const fp32 = join(work, 'onnx-fp32');
    exportArtefact({ input: dir, format: 'onnx', dtype: 'fp32', out: fp32, skipCheck: true });
    const ref = loom(fp32, ONNX_FILES.fp32, false, '-');
    const evalPath = join(work, 'eval.json');
    writeFileSync(evalPath, `[${ref.text}]`);
    emit({ engine: 'loom', variant: 'fp32', ppl: ref.ppl, eval_tokens: pplTokens, layers, threads });
    type V = {
      dtype: 'int8' | 'int4';
      name: string;
      level?: 0 | 4;
      q?: { scaleType?: 'float32' | 'float16'; scaleRule?: 'signed-max' | 'amax'; vocabBits?: 4 | 8 };
      time?: boolean;
    };
    // the shipped defaults (float16 scales; int4 with 8-bit vocabulary matrices) beside the earlier layouts
    const variants: V[] = [
      { dtype: 'int8', name: 'default (f16 scales)' },
      { dtype: 'int8', name: 'f32 scales', q: { scaleType: 'float32' } },
      { dtype: 'int8', name: 'f16 scales, amax/127', q: { scaleRule: 'amax' } },
      { dtype: 'int8', name: 'f32 scales, level 0 (ppl only)', level: 0, time: false, q: { scaleType: 'float32' } },
      { dtype: 'int4', name: 'default (f16 scales, 8-bit vocab)' },
      { dtype: 'int4', name: 'f32 scales, 4-bit vocab', q: { scaleType: 'float32', vocabBits: 4 } },
      { dtype: 'int4', name: 'f16 scales, 4-bit vocab', q: { vocabBits: 4 } },
    ];
    for (const dtype of ['int8', 'int4'] as const) {
      if (only && only !== dtype) continue;
      const g = exportArtefact({ input: dir, format: 'gguf', dtype, out: join(work, `gguf-${dtype}`) });
      const cpp = last(
        execFileSync(
          process.execPath,
          [
            '--import',
            'tsx',
            join(import.meta.dirname, 'formats.ts'),
            String(threads),
            '--prompt',
            String(PROMPT),
            '--new',
            String(NEW),
            '--eval',
            String(ref.text),
            '--vocab',
            String(cfg.vocabSize),
            g.artefact,
          ],
          { env: { ...process.env, LOOM_BENCH_SIDE: 'llama' }, encoding: 'utf8', maxBuffer: 1 << 26 },
        ),
      );
      const cppMb = statSync(g.artefact).size / 2 ** 20;
      emit({ engine: 'llama.cpp', dtype, file_mb: +cppMb.toFixed(2), ...cpp });
      for (const v of variants.filter((x) => x.dtype === dtype)) {
        const out = join(work, `onnx-${dtype}-${variants.indexOf(v)}`);
        exportArtefact({
          input: dir,
          format: 'onnx',
          dtype,
          out,
          skipCheck: true,
          accuracyLevel: v.level,
          onnxQuant: v.q,
        });
        const file = ONNX_FILES[dtype];
        const mb = statSync(join(out, 'onnx', file)).size / 2 ** 20;
        const r = loom(out, file, v.time !== false, evalPath);
        emit({
          engine: 'loom',
          dtype,
          variant: v.name,
          file_mb: +mb.toFixed(2),
          ...r,
          size_vs_llama: +(mb / cppMb).toFixed(4),
          ppl_vs_llama: +(Number(r.ppl) / Number(cpp.ppl)).toFixed(4),
          decode_vs_llama: r.decode_tokens_per_s
            ? +(Number(r.decode_tokens_per_s) / Number(cpp.decode_tokens_per_s)).toFixed(3)
            : null,
        });
        rmSync(out, { recursive: true, force: true });
      }
      rmSync(g.outDir, { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
