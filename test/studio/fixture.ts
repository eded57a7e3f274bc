import { appendFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ChatModel } from '../../src/core/types.ts';
import { runDataPipeline } from '../../src/data/pipeline.ts';
import { runSuite } from '../../src/eval/suite/runner.ts';
import type { Registry } from '../../src/registry/db.ts';
import { PipelineStages } from '../../src/registry/pipeline.ts';
import { buildStudio, listenStudio, type Studio } from '../../src/studio/app.ts';
import { tinyProject } from '../train/helpers.ts';

/**
 * A whole tiny project for the Studio tests: a random tiny model, the data stage's own run over the pipeline
 * fixture (with one duplicated line, so at least one row is rejected with a reason), a 3-step LoRA config and an
 * eval suite. Everything is produced by the real stages, nothing hand-written in their output shapes.
 */
export async function studioProject(): Promise<{ dir: string; duplicate: string }> {
  const { dir } = tinyProject({ rows: 16 });
  cpSync('test/fixtures/data/pipeline', join(dir, 'data-src'), { recursive: true });
  const chat = join(dir, 'data-src', 'chat.jsonl');
  const first = readFileSync(chat, 'utf8').split('\n')[0]!;
  appendFileSync(chat, `\n${first}\n`);
  await runDataPipeline(join(dir, 'data-src', 'data.yaml'), { quiet: true });
  const trainBase = {
    model: 'model',
    dataset: 'train.jsonl',
    finetuning_type: 'lora',
    lora_rank: 4,
    learning_rate: 0.005,
    per_device_train_batch_size: 2,
    cutoff_len: 64,
    max_steps: 3,
    logging_steps: 1,
    save_steps: 100,
    seed: 1,
    threads: 1,
    output_dir: 'runs/lora',
  };
  writeFileSync(join(dir, 'train.yaml'), stringify(trainBase));
  // The pipeline the Lineage page runs: data → train (its own 2-step config and folder) → eval.
  writeFileSync(join(dir, 'train-pipe.yaml'), stringify({ ...trainBase, max_steps: 2, output_dir: 'runs/pipe' }));
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    stringify({
      name: 'studio',
      registry: 'registry.db',
      stages: {
        data: { config: 'data-src/data.yaml', inputs: ['data-src/chat.jsonl'], outputs: ['data-src/out'] },
        train: { config: 'train-pipe.yaml', merge: false, inputs: ['train.jsonl'], outputs: ['runs/pipe'] },
        eval: { config: 'eval.yaml', inputs: ['gen.jsonl'], outputs: ['evals-pipe'] },
      },
    }),
  );
  writeFileSync(
    join(dir, 'gen.jsonl'),
    ['where is my order', '你好'].map((q) => JSON.stringify({ question: q, answer: 'it ships tomorrow' })).join('\n'),
  );
  writeFileSync(
    join(dir, 'eval.yaml'),
    stringify({
      name: 'studio',
      models: [{ id: 'tiny', kind: 'local', path: 'model' }],
      generation: { max_new_tokens: 4, temperature: 0, seed: 0 },
      tasks: [{ id: 'gen', kind: 'generation', dataset: 'gen.jsonl', metrics: ['chrf'] }],
      out_dir: 'evals',
      cache: 'cache.sqlite',
      bootstrap: { samples: 20, seed: 1 },
    }),
  );
  return { dir, duplicate: first };
}

export interface RunningStudio {
  dir: string;
  duplicate: string;
  studio: Studio;
  /** http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  close(): Promise<void>;
}

/**
 * The set-up both the API test and the browser test stand on: the tiny project, its eval suite run once, and a
 * standalone Studio on 127.0.0.1 (port 0) with a registry inside the project; close() stops it and removes the folder.
 */
export async function startStudio(): Promise<RunningStudio> {
  const { dir, duplicate } = await studioProject();
  await runSuite(join(dir, 'eval.yaml'), { parallel: 1 });
  const studio = buildStudio({ projectDir: dir, registry: join(dir, 'registry.db') });
  const url = await listenStudio(studio, '127.0.0.1', 0);
  return {
    dir,
    duplicate,
    studio,
    url,
    close: async () => {
      await studio.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A stand-in chat model for gateway tests (the Monitor and mount tests need traffic, not a real model). */
export const echo: ChatModel = {
  id: 'echo',
  chat: async (m) => ({
    text: `echo: ${m.at(-1)!.content}`,
    usage: { promptTokens: 3, completionTokens: 2 },
    finishReason: 'stop',
  }),
};

/**
 * A branching project's lineage written straight into a registry: one dataset → two training runs → an eval and an
 * export per run → an endpoint on one export, plus a pipeline train stage that recorded its own train run (which
 * therefore feeds the stage's eval). `edges` is the DAG by hand, what the graph must draw.
 */
export function branchingRuns(
  reg: Registry,
  dir: string,
): { ids: string[]; edges: { from: string; to: string; relation: string }[] } {
  const at = (i: number) => new Date(Date.UTC(2026, 11, 7, 9, 0, i)).toISOString();
  const runs: [string, string, string | undefined][] = [
    ['br-data', 'pipeline:data', undefined],
    ['br-train-a', 'train', 'br-data'],
    ['br-train-b', 'train', 'br-data'],
    ['br-eval-a', 'eval', 'br-train-a'],
    ['br-export-a', 'export', 'br-train-a'],
    ['br-eval-b', 'eval', 'br-train-b'],
    ['br-export-b', 'export', 'br-train-b'],
    ['br-serve-a', 'pipeline:serve', 'br-export-a'],
    ['br-stage-train', 'pipeline:train', 'br-data'],
    ['br-stage-train-run', 'train', 'br-stage-train'],
    ['br-stage-eval', 'pipeline:eval', 'br-stage-train'],
  ];
  for (const [i, [id, kind, parentId]] of runs.entries()) {
    reg.upsertRun({
      id,
      kind,
      status: 'finished',
      outputDir: join(dir, 'branch', id),
      ...(parentId ? { parentId } : {}),
      config: {},
      createdAt: at(i),
    });
  }
  new PipelineStages(reg).linkChild('br-stage-train', 'br-stage-train-run');
  const parent = runs.flatMap(([id, , p]) => (p ? [{ from: p, to: id, relation: 'parent' }] : []));
  return {
    ids: runs.map((r) => r[0]),
    edges: [...parent, { from: 'br-stage-train-run', to: 'br-stage-eval', relation: 'feeds' }],
  };
}
