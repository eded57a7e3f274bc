import { z } from 'zod';
import { type LoadedConfig, loadConfig } from '../config/load.ts';

/**
 * pipeline.yaml: the stages `loom run` chains, in lifecycle order. Every path is relative to the project folder
 * (the folder holding pipeline.yaml). A stage left out is not run; `outputs` are what the next stage reads and
 * what lineage points at.
 *
 *   name: customer-service
 *   stages:
 *     data:   { config: data.yaml }
 *     train:  { pretrain: pretrain.yaml, config: train.yaml }
 *     eval:   { config: eval.yaml }
 *     export: { input: out/train/lora, format: hf }
 *     serve:  { config: serve.yaml, prompt: "How do I reset my password?" }
 */
export const STAGES = ['data', 'train', 'eval', 'export', 'serve'] as const;
export type StageName = (typeof STAGES)[number];

const paths = z.array(z.string().min(1));

const dataStage = z
  .object({
    config: z.string().default('data.yaml'),
    /** Extra inputs hashed with the config (the data config's own input files are hashed by default: `data/`). */
    inputs: paths.default(['data']),
    outputs: paths.default(['out/data']),
  })
  .strict();

const trainStage = z
  .object({
    /** Optional: builds the base model from nothing first (stage pt) on the data stage's chats rendered as text. */
    pretrain: z.string().optional(),
    config: z.string().default('train.yaml'),
    merge: z.boolean().default(true),
    inputs: paths.default(['out/data/train.jsonl', 'out/data/validation.jsonl']),
    outputs: paths.default(['out/train']),
  })
  .strict();

const evalStage = z
  .object({
    config: z.string().default('eval.yaml'),
    inputs: paths.default(['out/data/test.jsonl', 'out/train']),
    outputs: paths.default(['out/eval']),
  })
  .strict();

const exportStage = z
  .object({
    input: z.string().default('out/train/lora'),
    format: z.enum(['hf', 'peft', 'onnx', 'gguf']).default('hf'),
    dtype: z.string().optional(),
    out: z.string().default('out/export'),
  })
  .strict();

const serveStage = z
  .object({
    config: z.string().default('serve.yaml'),
    /** The smoke request: one chat through the started server, then it stops (`loom run --serve` keeps it up). */
    prompt: z.string().default('Hello'),
    model: z.string().optional(),
    max_tokens: z.number().int().min(1).max(512).default(32),
    inputs: paths.default(['out/export']),
  })
  .strict();

const pipelineSchema = z
  .object({
    name: z.string().min(1),
    /** Registry file, relative to the project (default .loom/registry.db; $LOOM_REGISTRY wins). */
    registry: z.string().default('.loom/registry.db'),
    stages: z
      .object({
        data: dataStage.optional(),
        train: trainStage.optional(),
        eval: evalStage.optional(),
        export: exportStage.optional(),
        serve: serveStage.optional(),
      })
      .strict(),
  })
  .strict();

export type PipelineConfig = z.output<typeof pipelineSchema>;
export type StageConfigs = PipelineConfig['stages'];

export function loadPipelineConfig(path: string, overrides: readonly string[] = []): LoadedConfig<PipelineConfig> {
  return loadConfig(path, pipelineSchema, overrides);
}
