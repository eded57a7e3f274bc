/**
 * Guard stage library API (used by `loom serve` as middleware and by `loom guard`):
 *
 *   const g = createGuard({ thresholds: { injection: 0.8 } });
 *   g.checkInput(messages)        → Verdict (user/tool turns scanned; PII masked copy in `masked`)
 *   g.checkOutput(text, { prompt }) → Verdict (harmful content, canary leak, PII, links)
 *   g.moderateStream(chunks)       → async iterable of safe chunks, held back `hold_back` characters
 *   g.refusal('zh')                → polite refusal in zh-CN or English
 *
 * Layers: normalise (normalize.ts) → rules (rules.ts) → similarity (similarity.ts) → classifier (classifier.ts, opt-in:
 * a model trained with `loom guard train-classifier`). Each layer gives scores per
 * label; the verdict keeps the best per label and the evidence (layer + rule id) for the one that decided.
 * Input turns are normalised one by one through a per-guard LRU (view-cache.ts), so a chat's history is not
 * normalised again on every request. A text longer than `max_chars` is never passed unchecked: it is refused
 * (`over_limit: block`, a refusal naming the limit) or only its first and last `max_chars / 2` characters are
 * checked and the verdict is at least `flag` (`over_limit: scan_ends`).
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GuardConfig, type GuardConfigInput, guardConfig, resolveGuardConfig } from '../config/guard.ts';
import { validateConfig } from '../config/load.ts';
import { LoomError } from '../core/errors.ts';
import { createPiiDetector, type PiiSpan } from '../data/pii.ts';
import { type GuardClassifier, loadGuardClassifier } from './classifier.ts';
import { type GuardView, normalizeForGuard, type TransformName } from './normalize.ts';
import { type GuardLabel, type HarmCategory, maskRuleMatches, runRules } from './rules.ts';
import { AttackStore, loadAttackStore } from './similarity.ts';
import { joinViews, ViewCache } from './view-cache.ts';

export type { GuardConfig, GuardConfigInput } from '../config/guard.ts';
export type { GuardLabel, HarmCategory } from './rules.ts';

export interface Evidence {
  label: GuardLabel | 'canary' | 'pii' | 'link' | 'limit';
  layer: 'rules' | 'similarity' | 'classifier' | 'canary' | 'pii' | 'links' | 'limits';
  rule: string;
  score: number;
  category?: HarmCategory;
}

export interface Verdict {
  /** `block`: refuse; `mask`: send `masked`; `flag`: send as is, but record; `allow`: nothing found. */
  action: 'allow' | 'flag' | 'mask' | 'block';
  /** Labels at or above their threshold, strongest first. */
  labels: GuardLabel[];
  /** Best score per label (0 when nothing matched). */
  scores: Record<GuardLabel, number>;
  evidence: Evidence[];
  transforms: TransformName[];
  /** Text with PII / disallowed links masked (input: the last user turn). */
  masked?: string;
  /** Refusal to send when action is block, in the message's language. */
  refusal?: string;
  /** Milliseconds spent in the classifier layer (absent when it is off), reported apart from the other layers. */
  classifier_ms?: number;
}

export interface ChatTurn {
  role: string;
  content: string;
}

export interface Guard {
  readonly config: GuardConfig;
  checkInput(messages: readonly ChatTurn[] | string): Verdict;
  checkOutput(text: string, ctx?: { prompt?: string; lang?: 'en' | 'zh' }): Verdict;
  moderateStream(chunks: AsyncIterable<string>, ctx?: { prompt?: string }): AsyncIterable<string>;
  refusal(lang: 'en' | 'zh'): string;
}

const REFUSALS = {
  en: "Sorry, I can't help with that request. I'm happy to help with orders, products, shipping or returns.",
  zh: '抱歉，这个请求我无法协助。如果您有订单、商品、物流或退换货方面的问题，我很乐意为您解答。',
};

export function refusal(lang: 'en' | 'zh'): string {
  return REFUSALS[lang];
}

/** The refusal for a text over `max_chars` (over_limit: block), naming its length and the limit. */
export function limitRefusal(lang: 'en' | 'zh', chars: number, max: number): string {
  const n = chars.toLocaleString('en-US');
  const m = max.toLocaleString('en-US');
  return lang === 'zh'
    ? `抱歉，这条消息太长，无法检查（${n} 个字符，上限为 ${m} 个字符）。请缩短后再发送，或分几次发送。`
    : `Sorry, this message is too long to check (${n} characters; the limit is ${m}). Please shorten it or send it in parts.`;
}

export function langOf(text: string): 'en' | 'zh' {
  return /[\u4e00-\u9fff]/.test(text) ? 'zh' : 'en';
}

function dataPath(name: string): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const p = resolve(here, '../../data/guard', name);
  return existsSync(p) ? p : undefined;
}

const classifiers = new Map<string, GuardClassifier>();
/** One loaded classifier per folder for the process (serve builds a guard per model and route). */
function classifierAt(dir: string): GuardClassifier {
  let c = classifiers.get(dir);
  if (!c) {
    c = loadGuardClassifier(dir);
    classifiers.set(dir, c);
  }
  return c;
}

const LABELS: GuardLabel[] = ['injection', 'jailbreak', 'harmful'];
const URL_RE = /\bhttps?:\/\/([^\s/?#<>"'）)]+)[^\s<>"'）)]*/gi;

export interface GuardOptions {
  route?: string;
  store?: AttackStore;
  /** Normalised input turns kept for reuse (LRU); 0 turns the cache off. Default 1024. */
  viewCache?: number;
}

export function createGuard(input: GuardConfigInput = {}, opts: GuardOptions = {}): Guard {
  const config = resolveGuardConfig(validateConfig(guardConfig, input, 'guard'), opts.route);
  const cache = new ViewCache(opts.viewCache ?? 1024);
  const categories = new Set<HarmCategory>(config.categories);
  let store = opts.store;
  if (!store && config.similarity.enabled) {
    const p = config.similarity.store ?? dataPath('attacks.jsonl');
    store = p ? loadAttackStore(p) : new AttackStore([]);
  }
  const pii = createPiiDetector();
  let clf: GuardClassifier | undefined;
  if (config.classifier.enabled) {
    const dir = config.classifier.model ?? dataPath('classifier');
    if (!dir) {
      throw new LoomError('CONFIG_INVALID', 'guard classifier enabled but no model folder found', {
        field: 'guard.classifier.model',
        hint: 'train one with `loom guard train-classifier` and set classifier.model, or disable the classifier',
      });
    }
    clf = classifierAt(dir);
  }

  function score(view: GuardView, side: 'input' | 'output'): Omit<Verdict, 'action' | 'masked' | 'refusal'> {
    const views = [view.text, ...view.decoded];
    const scores: Record<GuardLabel, number> = { injection: 0, jailbreak: 0, harmful: 0 };
    const evidence: Evidence[] = [];
    // Noisy-or per label: two independent cues (persona + "never refuse") add up, one weak cue stays weak.
    const miss: Record<GuardLabel, number> = { injection: 1, jailbreak: 1, harmful: 1 };
    const add = (e: Evidence): void => {
      evidence.push(e);
      const l = e.label as GuardLabel;
      miss[l] *= 1 - e.score;
      scores[l] = Math.round((1 - miss[l]) * 1000) / 1000;
    };
    // Attacks are an input concern; an answer that quotes an attack pattern is not itself an attack.
    for (const h of runRules(views, categories)) {
      if (side === 'output' && h.label !== 'harmful') continue;
      add({ label: h.label, layer: 'rules', rule: h.id, score: h.score, category: h.category });
    }
    if (store && side === 'input') {
      for (const h of store.query(views)) {
        if (h.label === 'harmful') continue;
        const s = h.score * config.similarity.weight;
        if (s > 0.3) add({ label: h.label, layer: 'similarity', rule: `store#${h.index}`, score: s });
      }
    }
    let classifierMs: number | undefined;
    if (clf && side === 'input') {
      // The classifier sees the normalised view (what it was trained on is plain text; obfuscation is undone first).
      const t0 = performance.now();
      const p = clf.classify(view.text);
      classifierMs = performance.now() - t0;
      clf.labels.forEach((l, i) => {
        if (l === 'benign' || !(LABELS as string[]).includes(l)) return;
        if (p[i]! >= config.classifier.min_p)
          add({
            label: l as GuardLabel,
            layer: 'classifier',
            rule: `cls:${l}`,
            score: p[i]! * config.classifier.weight,
          });
      });
    }
    // Decoded hidden payloads that carry an attack are more suspicious than plain text.
    const hidden = view.transforms.some((t) => t === 'base64' || t === 'hex');
    if (hidden) for (const l of LABELS) if (scores[l] > 0) scores[l] = Math.min(1, scores[l] + 0.1);
    evidence.sort((a, b) => b.score - a.score);
    const labels = LABELS.filter((l) => scores[l] >= config.thresholds[l]).sort((a, b) => scores[b] - scores[a]);
    const out: Omit<Verdict, 'action' | 'masked' | 'refusal'> = {
      labels,
      scores,
      evidence,
      transforms: [...view.transforms],
    };
    if (classifierMs !== undefined) out.classifier_ms = Math.round(classifierMs * 1000) / 1000;
    return out;
  }

  function finish(
    base: Omit<Verdict, 'action' | 'masked' | 'refusal'>,
    text: string,
    side: 'input' | 'output',
    lang: 'en' | 'zh',
    rescore: (masked: string) => GuardLabel[],
  ): Verdict {
    const st: { action: Verdict['action'] } = { action: 'allow' };
    const rank = { allow: 0, flag: 1, mask: 2, block: 3 } as const;
    const raise = (a: Verdict['action']): void => {
      if (rank[a] > rank[st.action]) st.action = a;
    };
    let masked = text;
    const toMask = base.labels.filter((l) => config.actions[l] === 'mask');
    for (const l of base.labels) if (config.actions[l] !== 'mask') raise(config.actions[l]);
    if (toMask.length > 0) {
      const ids = base.evidence
        .filter((e) => e.layer === 'rules' && toMask.some((l) => l === e.label))
        .map((e) => e.rule);
      const m = maskRuleMatches(text, ids);
      // Still firing once the matched spans are gone (an obfuscated copy, a similarity hit, another turn):
      // masking cannot make it safe, so the safe fallback is a refusal.
      const again = m === undefined ? undefined : rescore(m);
      if (m !== undefined && again && !toMask.some((l) => again.includes(l))) {
        masked = m;
        raise('mask');
      } else raise('block');
    }
    if (config.pii.action !== 'off') {
      const m = pii.mask(text);
      if (m.spans.length > 0) {
        const types = [...new Set(m.spans.map((s: PiiSpan) => s.type))].join(',');
        base.evidence.push({ label: 'pii', layer: 'pii', rule: `pii:${types}`, score: 1 });
        if (config.pii.action === 'mask') {
          masked = m.text;
          raise('mask');
        } else raise('flag');
      }
    }
    if (side === 'output' && config.links.allow.length > 0) {
      masked = masked.replace(URL_RE, (url, host: string) => {
        const h = host.toLowerCase().replace(/:\d+$/, '');
        if (config.links.allow.some((a) => h === a || h.endsWith(`.${a}`))) return url;
        base.evidence.push({ label: 'link', layer: 'links', rule: `link:${h}`, score: 1 });
        raise('mask');
        return '<URL>';
      });
    }
    if (side === 'output' && config.canary && text.includes(config.canary)) {
      base.evidence.unshift({ label: 'canary', layer: 'canary', rule: 'canary.leak', score: 1 });
      raise('block');
    }
    const v: Verdict = { action: st.action, ...base };
    if (masked !== text) v.masked = masked;
    if (st.action === 'block') v.refusal = refusal(lang);
    return v;
  }

  /**
   * A text over max_chars: refused with a refusal naming the limit, or (scan_ends) checked on its first and last
   * max_chars / 2 characters only. Then any label blocks (masking a partly read text cannot make it safe), PII
   * found in the ends flags, nothing found still flags, no masked copy is made, and the canary is looked for in
   * the whole text. Work is bounded by max_chars whatever the length.
   */
  function overLimit(text: string, side: 'input' | 'output', lang: 'en' | 'zh'): Verdict {
    const max = config.max_chars;
    const none = { injection: 0, jailbreak: 0, harmful: 0 };
    const limit = (rule: string): Evidence => ({ label: 'limit', layer: 'limits', rule, score: 1 });
    if (config.over_limit === 'block') {
      return {
        action: 'block',
        labels: [],
        scores: none,
        evidence: [limit('limit.too_long')],
        transforms: [],
        refusal: limitRefusal(lang, text.length, max),
      };
    }
    const half = Math.floor(max / 2);
    const ends = `${text.slice(0, half)}\n${text.slice(-half)}`;
    const base = score(normalizeForGuard(ends), side);
    base.evidence.unshift(limit('limit.scanned_ends'));
    let action: Verdict['action'] = base.labels.length > 0 ? 'block' : 'flag';
    if (config.pii.action !== 'off') {
      const types = [...new Set(pii.find(ends).map((s) => s.type))];
      if (types.length > 0)
        base.evidence.push({ label: 'pii', layer: 'pii', rule: `pii:${types.join(',')}`, score: 1 });
    }
    if (side === 'output' && config.canary && text.includes(config.canary)) {
      base.evidence.unshift({ label: 'canary', layer: 'canary', rule: 'canary.leak', score: 1 });
      action = 'block';
    }
    const v: Verdict = { action, ...base };
    if (action === 'block') v.refusal = refusal(lang);
    return v;
  }

  const guard: Guard = {
    config,
    refusal,
    checkInput(messages) {
      const turns = typeof messages === 'string' ? [{ role: 'user', content: messages }] : messages;
      // System turns are the operator's; only what users and tools supply can carry an attack.
      const scanned = turns.filter((t) => t.role !== 'system' && t.role !== 'assistant');
      const last = scanned.at(-1)?.content ?? '';
      if (!config.enabled)
        return finish(
          { labels: [], scores: { injection: 0, jailbreak: 0, harmful: 0 }, evidence: [], transforms: [] },
          last,
          'input',
          langOf(last),
          () => [],
        );
      const chars = scanned.reduce((n, t) => n + t.content.length, 0) + Math.max(0, scanned.length - 1);
      if (chars > config.max_chars)
        return overLimit(
          scanned.map((t) => t.content).join('\n'),
          'input',
          // The language of the new turn's ends: a regex over the whole paste is the work the cap avoids.
          langOf(`${last.slice(0, 2048)} ${last.slice(-2048)}`),
        );
      // Each turn normalised on its own (and cached): earlier turns cost a lookup.
      const history = scanned.slice(0, -1).map((t) => cache.view(t.content));
      const join = (lastText: string) => joinViews([...history, cache.view(lastText)]);
      const merged = score(join(last), 'input');
      return finish(merged, last, 'input', langOf(last), (m) => score(join(m), 'input').labels);
    },
    checkOutput(text, ctx = {}) {
      const lang = ctx.lang ?? langOf(ctx.prompt ?? text);
      if (!config.enabled)
        return finish(
          { labels: [], scores: { injection: 0, jailbreak: 0, harmful: 0 }, evidence: [], transforms: [] },
          text,
          'output',
          lang,
          () => [],
        );
      if (text.length > config.max_chars) return overLimit(text, 'output', lang);
      // Not cached: an answer is new text (a stream checks a longer prefix each time).
      return finish(
        score(normalizeForGuard(text), 'output'),
        text,
        'output',
        lang,
        (m) => score(normalizeForGuard(m), 'output').labels,
      );
    },
    moderateStream(chunks, ctx = {}) {
      return moderateStream(guard, chunks, config.hold_back, ctx.prompt);
    },
  };
  return guard;
}

/**
 * Streaming moderation: text is released only once it is `holdBack` characters behind the newest text and the
 * whole answer so far passes `checkOutput`; a violation stops the stream and emits the refusal instead, so a
 * violating phrase (up to `holdBack` characters long) is never sent half-way. Masking is applied to released text.
 * Push-shaped so a server can feed it from a generation callback; `moderateStream` wraps it for async iterables.
 */
export class StreamModerator {
  private buf = '';
  private sent = 0;
  /** Set once the answer was refused; later pushes return nothing. */
  verdict?: Verdict;
  private readonly lang: 'en' | 'zh' | undefined;
  constructor(
    private readonly guard: Guard,
    private readonly holdBack: number,
    private readonly prompt?: string,
  ) {
    this.lang = prompt ? langOf(prompt) : undefined;
  }
  get blocked(): boolean {
    return this.verdict?.action === 'block';
  }
  /** Adds generated text; returns what is now safe to send ('' when held back or refused). */
  push(chunk: string): string {
    if (this.blocked) return '';
    this.buf += chunk;
    return this.release(false);
  }
  /** The answer is complete: returns the rest (or the refusal). */
  end(): string {
    if (this.blocked) return '';
    return this.release(true);
  }
  private release(final: boolean): string {
    const v = this.guard.checkOutput(this.buf, { prompt: this.prompt, lang: this.lang });
    if (v.action === 'block') {
      this.verdict = v;
      return (this.sent > 0 ? '\n' : '') + (v.refusal ?? this.guard.refusal(this.lang ?? langOf(this.buf)));
    }
    if (final || v.action !== 'allow') this.verdict = v;
    const shown = v.masked ?? this.buf;
    // Masking can shift lengths; release only up to the safe point in the masked text.
    const safe = final ? shown.length : shown.length - this.holdBack;
    if (safe <= this.sent) return '';
    const out = shown.slice(this.sent, safe);
    this.sent = safe;
    return out;
  }
}

export async function* moderateStream(
  guard: Guard,
  chunks: AsyncIterable<string>,
  holdBack: number,
  prompt?: string,
): AsyncIterable<string> {
  const m = new StreamModerator(guard, holdBack, prompt);
  for await (const c of chunks) {
    const out = m.push(c);
    if (out) yield out;
    if (m.blocked) return;
  }
  const out = m.end();
  if (out) yield out;
}
