/**
 * The guard (src/guard) as `loom serve` middleware: one guard per served model (serve.yaml `guard:` with
 * per-model overrides under `guard.routes.<model>`), input checked before any generation, output checked whole
 * (JSON replies) or through the hold-back stream moderator (SSE), every verdict counted in
 * `loom_guard_verdicts_total{direction, verdict, rule}`.
 */
import type { GuardConfigInput } from '../config/guard.ts';
import type { Message } from '../core/types.ts';
import { createGuard, type Guard, type GuardLabel, StreamModerator, type Verdict } from '../guard/index.ts';
import type { ServeMetrics } from '../monitor/metrics.ts';

export interface InputDecision {
  /** Messages to generate from (PII / matched phrases masked in the last user turn when the action is mask). */
  messages?: Message[];
  prompt?: string;
  /** Set when the request is refused: the bilingual refusal to answer with instead of generating. */
  refusal?: string;
  verdict: Verdict;
}

const SIDE_LABELS = new Set(['canary', 'pii', 'link', 'limit']);

/** A bounded metric label: the rule id that decided, never client text (similarity hits and hosts collapse). */
function decidingRule(v: Verdict): string {
  if (v.action === 'allow') return 'none';
  const e = v.evidence.find((x) => SIDE_LABELS.has(x.label) || v.labels.includes(x.label as GuardLabel));
  if (!e) return 'none';
  if (e.layer === 'similarity') return 'similarity';
  if (e.layer === 'links') return 'link';
  return e.rule;
}

export class ServeGuard {
  private readonly guards = new Map<string, Guard>();
  constructor(
    config: GuardConfigInput,
    modelNames: readonly string[],
    private readonly metrics: ServeMetrics,
  ) {
    // Built up front so a bad guard block or attack store fails at startup, not on the first customer.
    for (const n of modelNames) this.guards.set(n, createGuard(config, { route: n }));
  }

  private count(direction: 'input' | 'output', v: Verdict): void {
    this.metrics.guardVerdicts.inc({ direction, verdict: v.action, rule: decidingRule(v) });
  }

  input(model: string, messages: Message[] | undefined, prompt: string | undefined): InputDecision {
    const g = this.guards.get(model);
    if (!g) throw new Error(`no guard for model ${model}`);
    const v = messages ? g.checkInput(messages) : g.checkInput(prompt ?? '');
    this.count('input', v);
    if (v.action === 'block') return { refusal: v.refusal ?? '', verdict: v };
    if (v.masked === undefined) return { messages, prompt, verdict: v };
    if (!messages) return { prompt: v.masked, verdict: v };
    // checkInput masks the last non-system, non-assistant turn: replace exactly that one.
    const i = messages.findLastIndex((m) => m.role !== 'system' && m.role !== 'assistant');
    const copy = messages.map((m, j) => (j === i ? { ...m, content: v.masked ?? m.content } : m));
    return { messages: copy, prompt, verdict: v };
  }

  /** A whole reply: the text to send and whether it was refused. */
  output(model: string, text: string, promptText: string): { text: string; refused: boolean; verdict: Verdict } {
    const g = this.guards.get(model);
    if (!g) throw new Error(`no guard for model ${model}`);
    const v = g.checkOutput(text, { prompt: promptText });
    this.count('output', v);
    if (v.action === 'block') return { text: v.refusal ?? g.refusal('en'), refused: true, verdict: v };
    return { text: v.masked ?? text, refused: false, verdict: v };
  }

  /** A streamed reply: feed deltas to `push`, then call `end`; the verdict is counted once. */
  stream(model: string, promptText: string): GuardedStream {
    const g = this.guards.get(model);
    if (!g) throw new Error(`no guard for model ${model}`);
    return new GuardedStream(new StreamModerator(g, g.config.hold_back, promptText), (v) => this.count('output', v));
  }
}

export class GuardedStream {
  private counted = false;
  constructor(
    private readonly m: StreamModerator,
    private readonly onVerdict: (v: Verdict) => void,
  ) {}
  get blocked(): boolean {
    return this.m.blocked;
  }
  get verdict(): Verdict | undefined {
    return this.m.verdict;
  }
  push(d: string): string {
    const out = this.m.push(d);
    if (this.m.blocked) this.done();
    return out;
  }
  end(): string {
    const out = this.m.end();
    this.done();
    return out;
  }
  private done(): void {
    if (this.counted || !this.m.verdict) return;
    this.counted = true;
    this.onVerdict(this.m.verdict);
  }
}

/** The user-side text a reply answers (its language picks the refusal's language). */
export function promptTextOf(messages: readonly Message[] | undefined, prompt: string | undefined): string {
  if (!messages) return prompt ?? '';
  return messages.findLast((m) => m.role === 'user')?.content ?? '';
}
