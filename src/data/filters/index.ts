/**
 * Quality filters. `qualityFilterStep(cfg)` (cfg: the `filters` section, see src/config/data-clean.ts) returns a
 * Step that, per row, detects the language of `rowText(row)` and applies in order: length bounds → language →
 * repetition → quality → C4 → FineWeb, with the Chinese character-based rule set for rows detected as `zh` and
 * the English word-based set otherwise. The first failing rule drops the row with reason `<group>.<rule>`
 * (groups: `length`, `lang`, `gopher_rep`, `gopher_quality`, `c4`, `fineweb`, and `zh_rep`, `zh_quality`,
 * `zh_c4`, `zh_fineweb` for Chinese), counted as `filter.<reason>`, with value and threshold in the reject's
 * detail. Every row adds `lang.<zh|en|other>`; kept rows get `meta.lang` / `meta.lang_score` (unless
 * `tag_language: false`). C4 line removal on `text` rows is a change (reject action `changed`, reason
 * `c4.lines_removed`). `evaluateText(text, resolved)` is the same decision as a pure function;
 * `resolveFiltersConfig(cfg)` merges user keys over the preset.
 */

import { availableParallelism } from 'node:os';
import type { z } from 'zod';
import { type FiltersConfig, filtersConfig } from '../../config/data-clean.ts';
import { validateConfig } from '../../config/load.ts';
import type { DataRow } from '../../core/types.ts';
import { detectLanguage, type LangResult } from '../langid.ts';
import { rowText, type Step, type StepContext } from '../step.ts';
import { FilterPool, type WorkerEvaluation } from './pool.ts';
import { DEFAULTS, type PresetName, preset, type QualityFilterConfig } from './presets.ts';
import { c4, fineweb, gopherQuality, lengthRule, repetition, type Verdict, zhQuality } from './rules.ts';
import { wordTokens } from './text.ts';

export { DEFAULTS, type PresetName, preset, type QualityFilterConfig } from './presets.ts';
export * from './rules.ts';
export { charTokens, dupNGramChars, topNGramChars, wordTokens } from './text.ts';

type Obj = Record<string, unknown>;

function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** snake_case config keys → the camelCase rule configs (values are copied, arrays kept). */
function camelize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelize);
  if (v && typeof v === 'object') {
    const o: Obj = {};
    for (const [k, x] of Object.entries(v)) o[camel(k)] = camelize(x);
    return o;
  }
  return v;
}

function mergeRule<T>(base: T | false, fallback: T, over: unknown): T | false {
  if (over === undefined) return base;
  if (over === false) return false;
  return { ...(base === false ? fallback : base), ...(camelize(over) as Partial<T>) };
}

/** Preset values with the user's keys on top. */
export function resolveFiltersConfig(input: z.input<typeof filtersConfig> = {}): QualityFilterConfig & {
  tagLanguage: boolean;
  preset: PresetName;
  workers: number;
  parallelMinChars: number;
} {
  const cfg: FiltersConfig = validateConfig(filtersConfig, input, '<filters config>');
  const p = preset(cfg.preset);
  const en = cfg.en ?? {};
  const zh = cfg.zh ?? {};
  return {
    preset: cfg.preset,
    tagLanguage: cfg.tag_language,
    workers: cfg.workers === 'auto' ? Math.max(1, Math.min(availableParallelism(), 8)) : cfg.workers,
    parallelMinChars: cfg.parallel_min_chars,
    length: mergeRule(p.length, DEFAULTS.length, cfg.length),
    lang: mergeRule(p.lang, DEFAULTS.lang, cfg.lang),
    en: {
      repetition: mergeRule(p.en.repetition, DEFAULTS.enRepetition, en.repetition),
      quality: mergeRule(p.en.quality, DEFAULTS.gopherQuality, en.quality),
      c4: mergeRule(p.en.c4, DEFAULTS.c4, en.c4),
      fineweb: mergeRule(p.en.fineweb, DEFAULTS.enFineweb, en.fineweb),
    },
    zh: {
      repetition: mergeRule(p.zh.repetition, DEFAULTS.zhRepetition, zh.repetition),
      quality: mergeRule(p.zh.quality, DEFAULTS.zhQuality, zh.quality),
      c4: mergeRule(p.zh.c4, DEFAULTS.c4, zh.c4),
      fineweb: mergeRule(p.zh.fineweb, DEFAULTS.zhFineweb, zh.fineweb),
    },
    c4RemoveLines: cfg.c4_remove_lines ?? p.c4RemoveLines,
  };
}

export interface Evaluation {
  /** Set when the row is dropped: `<group>.<rule>` plus the measurement. */
  drop?: { reason: string } & Verdict;
  lang: LangResult;
  /** Text after C4 line removal (same string when unchanged). */
  text: string;
  linesRemoved: number;
}

/** Runs every enabled rule on one text; `allowEdit` lets C4 remove lines. */
export function evaluateText(text: string, cfg: QualityFilterConfig, allowEdit = true): Evaluation {
  const lang = detectLanguage(text);
  const out = (group: string, v: Verdict): Evaluation => ({
    drop: { reason: `${group}.${v.rule}`, ...v },
    lang,
    text,
    linesRemoved: 0,
  });
  if (cfg.length) {
    const v = lengthRule(text, cfg.length);
    if (v) return out('length', v);
  }
  if (cfg.lang) {
    if (!cfg.lang.allowed.includes(lang.lang))
      return out('lang', { rule: `not_allowed_${lang.lang}`, value: lang.score, threshold: cfg.lang.minScore });
    if (lang.score < cfg.lang.minScore)
      return out('lang', { rule: 'low_score', value: lang.score, threshold: cfg.lang.minScore });
  }
  const zh = lang.lang === 'zh';
  const set = zh ? cfg.zh : cfg.en;
  const prefix = zh ? 'zh_' : '';
  if (set.repetition) {
    const v = repetition(text, set.repetition, zh ? 'char' : 'word');
    if (v) return out(zh ? 'zh_rep' : 'gopher_rep', v);
  }
  let tokens: ReturnType<typeof wordTokens> | undefined;
  if (set.quality) {
    let v: Verdict | undefined;
    if (zh) v = zhQuality(text, cfg.zh.quality as Exclude<typeof cfg.zh.quality, false>);
    else {
      tokens = wordTokens(text);
      v = gopherQuality(text, cfg.en.quality as Exclude<typeof cfg.en.quality, false>, tokens);
    }
    if (v) return out(zh ? 'zh_quality' : 'gopher_quality', v);
  }
  let cur = text;
  let linesRemoved = 0;
  if (set.c4) {
    const r = c4(text, set.c4, zh);
    if (r.verdict) return out(`${prefix}c4`, r.verdict);
    if (allowEdit && r.linesRemoved > 0) {
      cur = r.text;
      linesRemoved = r.linesRemoved;
      tokens = undefined;
    }
  }
  if (set.fineweb) {
    const v = fineweb(cur, set.fineweb, zh, zh ? undefined : tokens);
    if (v) return { ...out(`${prefix}fineweb`, v), text: cur, linesRemoved };
  }
  return { lang, text: cur, linesRemoved };
}

const BATCH = 256;

export function qualityFilterStep(input: z.input<typeof filtersConfig> = {}): Step {
  const cfg = resolveFiltersConfig(input);
  const rules: QualityFilterConfig = {
    length: cfg.length,
    lang: cfg.lang,
    en: cfg.en,
    zh: cfg.zh,
    c4RemoveLines: cfg.c4RemoveLines,
  };
  /** Applies one evaluation: counts, rejects, and the row to keep (undefined = dropped). */
  const apply = (row: DataRow, ev: WorkerEvaluation, ctx: StepContext): DataRow | undefined => {
    ctx.count(`lang.${ev.lang.lang}`);
    if (ev.drop) {
      ctx.count(`filter.${ev.drop.reason}`);
      ctx.reject({
        step: 'filter',
        reason: ev.drop.reason,
        action: 'dropped',
        source: row.source,
        row,
        detail: {
          value: ev.drop.value,
          threshold: ev.drop.threshold,
          lang: ev.lang.lang,
          lang_score: Number(ev.lang.score.toFixed(3)),
        },
      });
      return undefined;
    }
    let out = row;
    if (ev.linesRemoved > 0 && ev.text !== undefined) {
      ctx.count('filter.c4.lines_removed', ev.linesRemoved);
      ctx.count('filter.c4.rows_changed');
      ctx.reject({
        step: 'filter',
        reason: 'c4.lines_removed',
        action: 'changed',
        source: row.source,
        row,
        detail: { lines_removed: ev.linesRemoved },
      });
      out = { ...row, text: ev.text };
    }
    if (cfg.tagLanguage) {
      out = { ...out, meta: { ...out.meta, lang: ev.lang.lang, lang_score: Number(ev.lang.score.toFixed(3)) } };
    }
    ctx.count('filter.kept');
    return out;
  };
  const inline = (row: DataRow): WorkerEvaluation => {
    const ev = evaluateText(rowText(row), rules, rules.c4RemoveLines && typeof row.text === 'string');
    return { drop: ev.drop, lang: ev.lang, linesRemoved: ev.linesRemoved, text: ev.text };
  };
  return {
    name: 'filter',
    async *run(rows: AsyncIterable<DataRow>, ctx: StepContext): AsyncIterable<DataRow> {
      let pool: FilterPool | undefined;
      let seen = 0;
      let batch: DataRow[] = [];
      const inflight: { rows: DataRow[]; results: Promise<WorkerEvaluation[]> }[] = [];
      const submit = (): void => {
        const items = batch.map((r): [string, boolean] => [
          rowText(r),
          rules.c4RemoveLines && typeof r.text === 'string',
        ]);
        inflight.push({ rows: batch, results: pool!.evaluate(items) });
        batch = [];
      };
      try {
        for await (const row of rows) {
          if (!pool) {
            const ev = inline(row);
            seen += rowText(row).length;
            const out = apply(row, ev, ctx);
            if (out) yield out;
            if (cfg.workers > 1 && seen >= cfg.parallelMinChars) {
              ctx.count('parallel.filter_workers', cfg.workers);
              pool = new FilterPool(rules, cfg.workers);
            }
            continue;
          }
          batch.push(row);
          if (batch.length >= BATCH) submit();
          // Keep every worker busy with up to two batches; emit finished batches in order.
          while (inflight.length >= pool.size * 2) {
            const head = inflight.shift()!;
            const res = await head.results;
            for (let i = 0; i < head.rows.length; i++) {
              const out = apply(head.rows[i]!, res[i]!, ctx);
              if (out) yield out;
            }
          }
        }
        if (pool && batch.length) submit();
        while (inflight.length) {
          const head = inflight.shift()!;
          const res = await head.results;
          for (let i = 0; i < head.rows.length; i++) {
            const out = apply(head.rows[i]!, res[i]!, ctx);
            if (out) yield out;
          }
        }
      } finally {
        await pool?.close();
      }
    },
  };
}
