import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  type ModelSpec,
  type PromptSpec,
  priceTableSchema,
  type Scenario,
  type SuiteConfig,
  scenarioSchema,
  suiteSchema,
} from '../../config/eval.ts';
import { loadConfig, validateConfig } from '../../config/load.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../core/atomic.ts';
import { LoomError } from '../../core/errors.ts';
import { Progress } from '../../core/progress.ts';
import type { ChatModel, GenerationSettings } from '../../core/types.ts';
import { costOf, defaultPrices, priceProvenance } from '../../providers/presets.ts';
import { bootstrapMean, formatChoicePrompt, loadMultipleChoice, scoreChoice } from '../metrics/index.ts';
import { renderRunReport } from '../report/html.ts';
import { type ConversationResult, runScenario } from '../simulate/conversation.ts';
import { GenerationCache } from './cache.ts';

const LETTERS = 'ABCDEFGHIJ'.split('');

import { resolvePrompts } from '../../config/prompt.ts';
import { extractLabel } from '../metrics/index.ts';
import { loadClassificationItems, loadGenerationItems } from './datasets.ts';
import { modelFingerprint, openModel, probeModel } from './models.ts';
import { promptKey, renderPrompt } from './prompts.ts';
import { type ExampleResult, perRequest, type RunResult, type TaskRunResult } from './results.ts';
import { conversationSummary, scoreClassification, scoreGeneration } from './scoring.ts';

export interface RunSuiteOptions {
  overrides?: string[];
  /** Override the output folder (default: the suite's out_dir, relative to the suite file). */
  outDir?: string;
  /** Called after each task so the CLI can print progress; results.json is already on disk then. */
  onTask?: (t: TaskRunResult) => void;
  /** Items generated at once per model (endpoints also apply their own concurrency limit). */
  parallel?: number;
}

/** Runs `fn` over items with at most `n` in flight, keeping order. */
async function mapPool<T, R>(items: T[], n: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}

function settingsOf(s: SuiteConfig['generation']): GenerationSettings {
  return { maxNewTokens: s.max_new_tokens, temperature: s.temperature, topP: s.top_p, seed: s.seed, stop: s.stop };
}

function loadScenarios(patterns: string[], baseDir: string): Scenario[] {
  const out: Scenario[] = [];
  for (const p of patterns) {
    const file = resolve(baseDir, p);
    let docs: unknown;
    try {
      docs = parseYaml(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new LoomError('CONFIG_PARSE', `cannot read scenarios: ${(e as Error).message}`, { file });
    }
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((d, i) => {
      out.push(validateConfig(scenarioSchema, d, `${file} (scenario ${i + 1})`));
    });
  }
  return out;
}

/**
 * Counts tokens actually spent per suite model id (inside the cache, so cached replies cost nothing). Keyed by the
 * suite's id, not the model's: two endpoints serving the same model name are billed separately.
 */
function metered(model: ChatModel, key: string, usage: RunResult['usage']): ChatModel {
  return {
    id: model.id,
    async chat(m, s, signal) {
      const t0 = performance.now();
      const r = await model.chat(m, s, signal);
      const u = (usage[key] ??= { modelId: model.id, promptTokens: 0, completionTokens: 0, requests: 0, seconds: 0 });
      u.promptTokens += r.usage.promptTokens;
      u.completionTokens += r.usage.completionTokens;
      u.requests = (u.requests ?? 0) + 1;
      u.seconds = (u.seconds ?? 0) + (performance.now() - t0) / 1000;
      return r;
    },
    logLikelihood: model.logLikelihood?.bind(model),
    close: model.close?.bind(model),
  };
}

/** A task's result before anything ran. */
function emptyTask(task: SuiteConfig['tasks'][number], model: string, prompt: PromptSpec): TaskRunResult {
  return { task: task.id, kind: task.kind, model, prompt: promptKey(prompt), summary: {}, examples: [], errors: [] };
}

/**
 * Trips on the first request that never got an HTTP answer (after its own bounded retries): the model is then
 * marked unreachable and every later request fails at once instead of retrying item after item.
 */
function breaker(model: ChatModel, key: string, down: Map<string, string>): ChatModel {
  const guard =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const reason = down.get(key);
      if (reason) throw new LoomError('NETWORK', `${model.id}: skipped, endpoint unreachable (${reason})`);
      try {
        return await fn(...a);
      } catch (e) {
        if (e instanceof LoomError && e.code === 'NETWORK' && e.field === 'base_url' && !down.has(key))
          down.set(key, e.message);
        throw e;
      }
    };
  return {
    id: model.id,
    chat: guard(model.chat.bind(model)),
    logLikelihood: model.logLikelihood ? guard(model.logLikelihood.bind(model)) : undefined,
    close: model.close?.bind(model),
  };
}

/**
 * Runs a suite: every model × prompt × task. Results are written after every task (a killed run keeps what
 * finished; rerunning it takes finished generations from the cache), then the HTML report is written.
 */
export async function runSuite(path: string, opts: RunSuiteOptions = {}): Promise<{ result: RunResult; dir: string }> {
  const loaded = loadConfig(path, suiteSchema, opts.overrides ?? []);
  const baseDir = loaded.baseDir;
  // Prompt files are loaded here, before the config hash: editing prompts/faq.yaml is a new config.
  const config = { ...loaded.config, prompts: resolvePrompts(loaded.config.prompts, baseDir) };
  const started = new Date();
  const runId = `${config.name}-${started.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}`;
  const dir = resolve(opts.outDir ?? resolve(baseDir, config.out_dir), runId);
  const configHash = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
  const result: RunResult = {
    runId,
    suite: config.name,
    suitePath: resolve(path),
    configHash,
    started: started.toISOString(),
    models: [],
    tasks: [],
    usage: {},
    cache: { hits: 0, misses: 0 },
    errors: [],
  };
  result.datasets = config.tasks.flatMap((t) =>
    (t.kind === 'conversation' ? t.scenarios : [t.dataset]).map((f) => {
      const file = resolve(baseDir, f);
      const sha256 = existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : '';
      return { task: t.id, path: file, sha256 };
    }),
  );
  const cache = new GenerationCache(resolve(baseDir, config.cache));
  const models = new Map<string, ChatModel>();
  const specs = new Map<string, ModelSpec>(config.models.map((m) => [m.id, m]));
  const raw = new Map<string, ChatModel>();
  const openRaw = async (spec: ModelSpec): Promise<ChatModel> => {
    let m = raw.get(spec.id);
    if (!m) {
      m = await openModel(spec, baseDir);
      raw.set(spec.id, m);
    }
    return m;
  };
  // One health probe per endpoint before anything runs (in parallel, bounded): an unreachable server fails fast
  // and its tasks are reported n/a instead of every item retrying into a score of 0.
  const unreachable = new Map<string, string>();
  await Promise.all(
    config.models
      .filter((m) => m.kind === 'endpoint')
      .map(async (spec) => {
        const reason = await probeModel(await openRaw(spec));
        if (reason) unreachable.set(spec.id, reason);
      }),
  );
  const getModel = async (id: string): Promise<ChatModel> => {
    const spec = specs.get(id);
    if (!spec) {
      throw new LoomError('CONFIG_INVALID', `model "${id}" is not among the suite's models`, {
        file: path,
        hint: `models: ${[...specs.keys()].join(', ')}`,
      });
    }
    let m = models.get(id);
    if (!m) {
      m = cache.wrap(
        metered(breaker(await openRaw(spec), id, unreachable), id, result.usage),
        modelFingerprint(spec, baseDir),
      );
      models.set(id, m);
    }
    return m;
  };
  const settings = settingsOf(config.generation);
  // Read before any model runs, so a bad price file fails fast instead of after the whole run.
  const suitePrices = {
    ...(config.prices_file ? loadConfig(resolve(baseDir, config.prices_file), priceTableSchema).config : {}),
    ...config.prices,
  };
  const prices = { ...defaultPrices, ...suitePrices };
  const save = () => {
    for (const u of Object.values(result.usage)) {
      u.costUsd = costOf(u.modelId, u.promptTokens, u.completionTokens, prices);
      const price = priceProvenance(u.modelId, suitePrices);
      if (price) u.price = price;
      Object.assign(u, perRequest(u));
    }
    writeJsonAtomic(join(dir, 'results.json'), result);
    writeFileAtomic(join(dir, 'report.html'), renderRunReport(result));
  };
  const judgeCtx = config.judge
    ? { model: await getModel(config.judge.model), scale: config.judge.scale as [number, number] }
    : undefined;

  try {
    for (const spec of config.models) {
      if (config.judge?.model === spec.id && config.models.length > 1) continue; // the judge is not under test
      const conversationUsers = new Set(config.tasks.flatMap((t) => (t.kind === 'conversation' ? [t.user_model] : [])));
      if (conversationUsers.has(spec.id)) continue;
      const down = unreachable.get(spec.id);
      if (down) {
        result.models.push({
          id: spec.id,
          modelId: spec.kind === 'endpoint' ? spec.model : spec.id,
          kind: spec.kind,
          unreachable: down,
        });
        for (const prompt of config.prompts) {
          for (const task of config.tasks) {
            result.tasks.push({
              ...emptyTask(task, spec.id, prompt),
              errors: [`endpoint unreachable: ${down}`],
              unreachable: down,
            });
          }
        }
        result.errors.push(`${spec.id}: endpoint unreachable, its tasks were not run: ${down}`);
        save();
        continue;
      }
      const model = await getModel(spec.id);
      result.models.push({
        id: spec.id,
        modelId: model.id,
        kind: spec.kind,
        path: spec.kind === 'local' ? resolve(baseDir, spec.path) : undefined,
        adapter: spec.kind === 'local' && spec.adapter ? resolve(baseDir, spec.adapter) : undefined,
      });
      for (const prompt of config.prompts) {
        for (const task of config.tasks) {
          const tr = emptyTask(task, spec.id, prompt);
          const label = `eval ${spec.id} ${promptKey(prompt)} ${task.id}`;
          // A conversation needs its simulated user and the judge too: n/a when either cannot be reached.
          const helpers =
            task.kind === 'conversation' ? [task.user_model, config.judge?.model].filter((x) => x !== undefined) : [];
          const helperDown = helpers.map((h) => [h, unreachable.get(h)] as const).find(([, r]) => r !== undefined);
          if (helperDown) {
            tr.unreachable = `${helperDown[0]}: ${helperDown[1]}`;
            tr.errors.push(`endpoint unreachable: ${tr.unreachable}`);
            result.tasks.push(tr);
            save();
            continue;
          }
          try {
            if (task.kind === 'generation') {
              const items = loadGenerationItems(resolve(baseDir, task.dataset), task.limit);
              const bar = new Progress({ label, total: items.length, unit: 'items' });
              const examples = await mapPool(items, opts.parallel ?? 4, async (it): Promise<ExampleResult> => {
                const msgs = renderPrompt(prompt, it.context, it.vars);
                const input = msgs.at(-1)?.content ?? '';
                try {
                  const r = await model.chat(msgs, settings);
                  bar.tick();
                  return { id: it.id, input, hypothesis: r.text, references: it.references, scores: {} };
                } catch (e) {
                  bar.tick();
                  return {
                    id: it.id,
                    input,
                    hypothesis: '',
                    references: it.references,
                    scores: {},
                    error: (e as Error).message,
                  };
                }
              });
              bar.done();
              tr.examples = examples;
              const ok = examples.filter((e) => !e.error);
              for (const e of examples) if (e.error) tr.errors.push(`item ${e.id}: ${e.error}`);
              Object.assign(tr, scoreGeneration(ok, task.metrics, task.tokenize, config.bootstrap));
            } else if (task.kind === 'classification') {
              const items = loadClassificationItems(resolve(baseDir, task.dataset), task.labels, task.limit);
              const bar = new Progress({ label, total: items.length, unit: 'items' });
              const instruction = `Classify the text into exactly one of these labels: ${task.labels.join(', ')}. Answer with the label only.`;
              tr.scoring = task.mode;
              tr.examples = await mapPool(items, opts.parallel ?? 4, async (it): Promise<ExampleResult> => {
                const msgs = renderPrompt(
                  { ...prompt, user: prompt.user ?? `${instruction}\n\n{{ text }}` },
                  [{ role: 'user', content: it.text }],
                  { text: it.text, labels: task.labels.join(', ') },
                );
                try {
                  let pred: string;
                  if (task.mode === 'loglik') {
                    if (!model.logLikelihood)
                      throw new LoomError('PROVIDER', `${model.id} cannot score log-likelihoods`);
                    const ll = await model.logLikelihood(msgs, task.labels);
                    pred = task.labels[ll.indexOf(Math.max(...ll))]!;
                  } else {
                    const r = await model.chat(msgs, settings);
                    pred = extractLabel(r.text, task.labels) ?? r.text.trim();
                  }
                  bar.tick();
                  return { id: it.id, input: it.text, hypothesis: pred, references: [it.label], scores: {} };
                } catch (e) {
                  bar.tick();
                  return {
                    id: it.id,
                    input: it.text,
                    hypothesis: '',
                    references: [it.label],
                    scores: {},
                    error: (e as Error).message,
                  };
                }
              });
              bar.done();
              for (const e of tr.examples) if (e.error) tr.errors.push(`item ${e.id}: ${e.error}`);
              Object.assign(
                tr,
                scoreClassification(
                  tr.examples.filter((e) => !e.error),
                  task.labels,
                  config.bootstrap,
                ),
              );
            } else if (task.kind === 'multiple_choice') {
              const all = loadMultipleChoice(resolve(baseDir, task.dataset));
              const items = task.limit ? all.slice(0, task.limit) : all;
              const bar = new Progress({ label, total: items.length, unit: 'items' });
              tr.scoring = model.logLikelihood ? 'loglik' : 'generate';
              tr.examples = await mapPool(items, opts.parallel ?? 4, async (it, idx): Promise<ExampleResult> => {
                const letters = LETTERS.slice(0, it.choices.length);
                const q = formatChoicePrompt(it);
                const msgs = renderPrompt(prompt, [{ role: 'user', content: q }], { question: q });
                const id = it.id ?? String(idx + 1);
                try {
                  let scores: Record<string, number>;
                  let pred: string;
                  if (model.logLikelihood) {
                    const ll = await model.logLikelihood(
                      msgs,
                      letters.map((l) => ` ${l}`),
                    );
                    const r = scoreChoice(it, ll);
                    scores = { acc: r.correct ? 1 : 0 };
                    pred = letters[r.pred]!;
                  } else {
                    const r = await model.chat(msgs, { ...settings, maxNewTokens: 8 });
                    pred = extractLabel(r.text, letters, { ignoreCase: false }) ?? r.text.trim();
                    scores = { acc: pred === letters[it.answer] ? 1 : 0 };
                  }
                  bar.tick();
                  return { id, input: q, hypothesis: pred, references: [letters[it.answer]!], scores };
                } catch (e) {
                  bar.tick();
                  return { id, input: q, hypothesis: '', references: [], scores: {}, error: (e as Error).message };
                }
              });
              bar.done();
              for (const e of tr.examples) if (e.error) tr.errors.push(`item ${e.id}: ${e.error}`);
              const ok = tr.examples.filter((e) => !e.error);
              if (ok.length) {
                const b = bootstrapMean(
                  ok.map((e) => e.scores.acc ?? 0),
                  { nSamples: config.bootstrap.samples, seed: config.bootstrap.seed },
                );
                tr.summary.accuracy = { score: b.score, ci: [b.low, b.high] };
              }
            } else {
              const scenarios = loadScenarios(task.scenarios, baseDir);
              const userModel = task.user_model ? await getModel(task.user_model) : undefined;
              const bar = new Progress({ label, total: scenarios.length, unit: 'scenarios' });
              const convs: ConversationResult[] = await mapPool(scenarios, opts.parallel ?? 4, async (s) => {
                const r = await runScenario(s, model, {
                  settings,
                  userModel,
                  judge: judgeCtx,
                  system: prompt.system,
                  fewShot: prompt.few_shot,
                });
                bar.tick();
                return r;
              });
              bar.done();
              tr.conversations = convs;
              for (const c of convs) for (const e of c.errors) tr.errors.push(`${c.scenario}: ${e}`);
              tr.summary = conversationSummary(convs, config.bootstrap);
            }
          } catch (e) {
            if (!(e instanceof LoomError)) throw e;
            tr.errors.push(e.format());
            result.errors.push(`${label}: ${e.message}`);
          }
          // The endpoint went away during this task: what was scored is a fragment, so no score stands for it.
          const lost = unreachable.get(spec.id);
          if (lost) {
            tr.unreachable = lost;
            tr.summary = {};
          }
          result.tasks.push(tr);
          result.cache = { hits: cache.hits, misses: cache.misses };
          save();
          opts.onTask?.(tr);
        }
      }
    }
  } finally {
    for (const m of models.values()) await m.close?.();
    cache.close();
  }
  result.finished = new Date().toISOString();
  save();
  return { result, dir };
}
