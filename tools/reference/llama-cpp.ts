/**
 * llama.cpp (node-llama-cpp 3.21.1) as the reference runtime for tests and benchmarks: the offline set-up, the
 * context that compares exactly with Loom at F32, and the timing of one prefill + decode. One copy, so a change of
 * settings (say, the flash-attention finding below) reaches every comparison.
 */
import type { Llama, LlamaContext, LlamaModel, Token } from 'node-llama-cpp';

/** CPU only, never build from source, quiet: what a test or bench on a machine without network needs. */
export async function offlineLlama(): Promise<Llama> {
  const { getLlama } = await import('node-llama-cpp');
  return getLlama({ gpu: false, build: 'never', progressLogs: false, logLevel: 'error' as never });
}

/**
 * An F32 KV cache with the plain attention path. llama.cpp's CPU flash-attention kernel (node-llama-cpp's default
 * 'auto' turns it on) computes attention with F16-rounded operands even over an F32 KV cache: measured, it moves
 * log-probs by ~1e-2 exactly as an F16 cache does, and with it off the F32 gap is ~1e-5.
 */
export function exactF32Context(model: LlamaModel, contextSize = 64, threads = 2): Promise<LlamaContext> {
  return model.createContext({
    contextSize,
    threads,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
}

/** Greedy continuation of `prompt` for `n` tokens: seconds to the first token (prefill) and for the n after it. */
export async function timeEvaluate(
  ctx: LlamaContext,
  prompt: readonly number[],
  n: number,
): Promise<{ prefill: number; decode: number }> {
  const seq = ctx.getSequence();
  let count = 0;
  const start = performance.now();
  let firstAt = start;
  for await (const _t of seq.evaluate(prompt as Token[], { temperature: 0 })) {
    count++;
    if (count === 1) firstAt = performance.now();
    if (count >= n + 1) break;
  }
  const end = performance.now();
  seq.dispose();
  return { prefill: (firstAt - start) / 1000, decode: (end - firstAt) / 1000 };
}
