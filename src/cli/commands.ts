import { type Command, Help } from 'commander';

type Register = (program: Command) => void;

/**
 * One row per verb, in `loom --help` order. `term` and `summary` are what the top-level help lists; a verb's
 * module (and everything it imports: ONNX Runtime, tokenizers, fastify, zod schemas…) loads only when that verb
 * runs, so `loom --help` and `loom eval metric …` start in a fraction of the time. test/cli/startup.test.ts
 * checks that the listing built from this table is byte-identical to the one the real registrations produce.
 * `load` gets the arguments after the verb: `eval metric` needs only the metric scorer, not the suite runner.
 */
interface Verb {
  name: string;
  term: string;
  summary: string;
  load: (rest: readonly string[]) => Promise<Register>;
}

export const VERBS: readonly Verb[] = [
  {
    name: 'data',
    term: 'data',
    summary: 'turn raw business text into clean, deduplicated, split training data (with a report)',
    load: async () => (await import('./data.ts')).registerData,
  },
  {
    name: 'quickstart',
    term: 'quickstart [options]',
    summary: 'run the customer-service example through every stage that exists and print what each produced',
    load: async () => (await import('./quickstart.ts')).registerQuickstart,
  },
  {
    name: 'eval',
    term: 'eval',
    summary: 'evaluate models: reference metrics, suites, comparisons, classifiers',
    load: async (rest) => {
      const { registerEval } = await import('./eval.ts');
      if (rest[0] === 'metric') return (p) => void registerEval(p);
      const [{ registerEvalSuite }, { registerEvalCls }] = await Promise.all([
        import('./eval-suite.ts'),
        import('./eval-cls.ts'),
      ]);
      return (p) => {
        const ev = registerEval(p);
        registerEvalSuite(ev);
        registerEvalCls(ev);
      };
    },
  },
  {
    name: 'model',
    term: 'model',
    summary: 'create and inspect model folders (HF layout: config.json + safetensors + tokenizer)',
    load: async () => {
      const [{ registerModel }, { registerModelScore }] = await Promise.all([
        import('./model.ts'),
        import('./model-score.ts'),
      ]);
      return (p) => registerModelScore(registerModel(p));
    },
  },
  {
    name: 'chat',
    term: 'chat [options] <model-dir>',
    summary: 'chat with a local model in the terminal (its chat template, streamed output; /exit to quit)',
    load: async () => (await import('./chat.ts')).registerChat,
  },
  {
    name: 'generate',
    term: 'generate [options] <model>',
    summary: 'raw completion of a prompt (no chat template): text, or prompt and generated token ids as JSON',
    load: async () => (await import('./generate.ts')).registerGenerate,
  },
  {
    name: 'pull',
    term: 'pull [options] <repo>',
    summary: 'download a model folder from the Hugging Face hub (resumable, checksummed)',
    load: async () => (await import('./pull.ts')).registerPull,
  },
  {
    name: 'train',
    term: 'train [options] <config> [overrides...]',
    summary:
      'fine-tune (lora, qlora, full, freeze, prefix), pretrain, or train a classifier (stage: cls); or emit the job for another trainer',
    load: async () => (await import('./train.ts')).registerTrain,
  },
  {
    name: 'adapter',
    term: 'adapter',
    summary: 'PEFT adapters: bring adapters trained elsewhere into the registry',
    load: async () => (await import('./adapter.ts')).registerAdapter,
  },
  {
    name: 'serve',
    term: 'serve [options] <target> [overrides...]',
    summary:
      'serve models over an OpenAI-compatible HTTP API (a model folder, ONNX export folder, .gguf file, or serve.yaml)',
    load: async () => (await import('./serve.ts')).registerServe,
  },
  {
    name: 'studio',
    term: 'studio [options]',
    summary: 'the web UI: datasets, training, evaluations, playground, monitor and lineage of one project',
    load: async () => (await import('./studio.ts')).registerStudio,
  },
  {
    name: 'keys',
    term: 'keys [options]',
    summary: 'API keys for loom serve (hashed at rest in the registry; the key is shown once)',
    load: async () => (await import('./keys.ts')).registerKeys,
  },
  {
    name: 'runs',
    term: 'runs',
    summary: 'list and show past runs recorded in the SQLite registry (.loom/registry.db or $LOOM_REGISTRY)',
    load: async () => (await import('./runs.ts')).registerRuns,
  },
  {
    name: 'export',
    term: 'export [options] <run-or-model-dir>',
    summary:
      'write a trained model for other runtimes: merged HF folder, PEFT adapter, ONNX (transformers.js), GGUF (llama.cpp / Ollama); checks the round trip',
    load: async () => (await import('./export.ts')).registerExport,
  },
  {
    name: 'guard',
    term: 'guard',
    summary: 'prompt-injection, jailbreak and content guard (check, eval, train-classifier)',
    load: async () => (await import('./guard.ts')).registerGuard,
  },
  {
    name: 'init',
    term: 'init [options] <dir>',
    summary: 'create a project folder from a template: sample data, data/train/eval/serve/pipeline YAMLs',
    load: async () => (await import('./project.ts')).registerInit,
  },
  {
    name: 'run',
    term: 'run [options] [pipeline]',
    summary: 'run a project pipeline: data → train → eval → export → serve, skipping unchanged stages',
    load: async () => (await import('./project.ts')).registerRun,
  },
  {
    name: 'lineage',
    term: 'lineage [options] <artefact>',
    summary:
      'where an artefact came from and what was made from it: data hash → config → checkpoint → export → endpoint → eval',
    load: async () => (await import('./project.ts')).registerLineage,
  },
];

/** Every verb, fully registered (tests, and anything that wants the whole command tree). */
export async function registerCommands(program: Command): Promise<void> {
  for (const v of VERBS) (await v.load([]))(program);
}

/**
 * Registers what `argv` (process.argv) needs: the named verb's real command (also for `loom help <verb>`), or,
 * for top-level help, `--version` and unknown verbs, a listing-only stub per verb so commander's help text and
 * "did you mean" suggestions stay the same without loading any verb's module.
 */
export async function registerForArgv(program: Command, argv: readonly string[]): Promise<void> {
  const args = argv.slice(2);
  let i = args.findIndex((a) => !a.startsWith('-'));
  if (i >= 0 && args[i] === 'help' && i + 1 < args.length) i += 1;
  const verb = i >= 0 ? VERBS.find((v) => v.name === args[i]) : undefined;
  if (verb) {
    (await verb.load(args.slice(i + 1)))(program);
    return;
  }
  const terms = new Map(VERBS.map((v) => [v.name, v.term]));
  const base = new Help();
  program.configureHelp({ subcommandTerm: (c) => terms.get(c.name()) ?? base.subcommandTerm(c) });
  for (const v of VERBS) program.command(v.name).description(v.summary);
}
