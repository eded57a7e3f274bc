import { add, matmul, mul, transpose } from '../engine/index.ts';
import type { LinearHook } from '../models/llama.ts';
import type { Float32Named } from '../models/safetensors.ts';

/**
 * A LinearHook that applies a (loaded) LoRA adapter at inference: y = x W^T + scale * (x A^T) B^T for every module
 * that has `<module>.lora_A.weight` / `lora_B.weight`. Use with buildLlama(cfg, weights, { linear: loraHook(...) }),
 * e.g. with the tensors of readPeftAdapter(dir) and adapterScale(config).
 */
export function loraHook(tensors: readonly Float32Named[], scale: number): LinearHook {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return (ctx) => {
    const base = ctx.base(ctx.x);
    const A = byName.get(`${ctx.name}.lora_A.weight`);
    const B = byName.get(`${ctx.name}.lora_B.weight`);
    if (!A || !B) return base;
    const a = ctx.graph.constant({ dtype: 'float32', dims: A.dims, data: A.data });
    const b = ctx.graph.constant({ dtype: 'float32', dims: B.dims, data: B.data });
    return add(base, mul(matmul(matmul(ctx.x, transpose(a, [1, 0])), transpose(b, [1, 0])), scale));
  };
}
