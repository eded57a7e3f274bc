import { type FINETUNING_TYPES, loraAlpha, loraScale, loraTargets, type TrainConfig } from '../config/train.ts';

/**
 * One typed options object per training method, built once from the parsed config: the graph builder, the loop,
 * the artefact writers and the emitters read these instead of the raw config keys, so a method only sees what
 * applies to it (full fine-tuning has no LoRA rank) and the LoRA scale is computed in one place.
 */
export type Method = (typeof FINETUNING_TYPES)[number];

/** AdamW (torch semantics) and global-norm clipping. */
export interface OptimOptions {
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  maxGradNorm: number;
}

/** LoRA as resolved: alpha defaulted, targets expanded, scale = alpha / r (or alpha / sqrt(r) for rsLoRA). */
export interface LoraOptions {
  rank: number;
  alpha: number;
  scale: number;
  dropout: number;
  targets: string[];
  useRslora: boolean;
}

interface Common {
  optim: OptimOptions;
  /** Additive attention mask input (needed for packing). */
  packing: boolean;
  /** Row pieces of the LM loss (engine chunkedCrossEntropy); 1 or unset: one [B·T, vocab] logits tensor. */
  lossChunks?: number;
  /** Recompute each decoder layer in the backward pass instead of keeping its activations. */
  gradientCheckpointing?: boolean;
}

export interface LoraMethod extends Common {
  method: 'lora';
  lora: LoraOptions;
}
export interface QloraMethod extends Common {
  method: 'qlora';
  lora: LoraOptions;
  quantBlockSize: number;
}
export interface FullMethod extends Common {
  method: 'full';
}
export interface FreezeMethod extends Common {
  method: 'freeze';
  freezeLayers: number;
  freezeModules: string[];
}
export interface PrefixMethod extends Common {
  method: 'prefix';
  numVirtualTokens: number;
}

export type MethodOptions = LoraMethod | QloraMethod | FullMethod | FreezeMethod | PrefixMethod;

export function loraOptions(c: TrainConfig): LoraOptions {
  const alpha = loraAlpha(c);
  return {
    rank: c.lora_rank,
    alpha,
    scale: loraScale({ lora_rank: c.lora_rank, lora_alpha: alpha, use_rslora: c.use_rslora }),
    dropout: c.lora_dropout,
    targets: loraTargets(c),
    useRslora: c.use_rslora,
  };
}

export function methodOptions(c: TrainConfig, packing: boolean): MethodOptions {
  const common: Common = {
    optim: {
      weightDecay: c.weight_decay,
      beta1: c.adam_beta1,
      beta2: c.adam_beta2,
      eps: c.adam_epsilon,
      maxGradNorm: c.max_grad_norm,
    },
    packing,
    lossChunks: c.loss_chunks,
    gradientCheckpointing: c.gradient_checkpointing,
  };
  switch (c.finetuning_type) {
    case 'lora':
      return { ...common, method: 'lora', lora: loraOptions(c) };
    case 'qlora':
      return { ...common, method: 'qlora', lora: loraOptions(c), quantBlockSize: c.quantization_block_size };
    case 'full':
      return { ...common, method: 'full' };
    case 'freeze':
      return {
        ...common,
        method: 'freeze',
        freezeLayers: c.freeze_trainable_layers,
        freezeModules: c.freeze_trainable_modules,
      };
    case 'prefix':
      return { ...common, method: 'prefix', numVirtualTokens: c.num_virtual_tokens };
  }
}
