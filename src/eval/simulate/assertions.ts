import type { Assertion } from '../../config/eval.ts';
import type { ChatModel, Message } from '../../core/types.ts';
import { checkJsonSchema } from '../metrics/index.ts';
import { judge } from './judge.ts';
import { isRefusal } from './refusal.ts';

export interface AssertionResult {
  type: Assertion['type'];
  pass: boolean;
  /** What was checked, readable in the report (e.g. `contains "订单号"`). */
  label: string;
  detail?: string;
  score?: number;
  /** Set when the check itself could not be made (e.g. the judge reply did not parse). */
  error?: string;
}

export interface JudgeContext {
  model: ChatModel;
  scale: readonly [number, number];
}

function norm(s: string, ignoreCase: boolean): string {
  return ignoreCase ? s.toLowerCase() : s;
}

/**
 * Checks one assertion against a reply (and, for judge rubrics, the transcript so far). Never throws for a
 * failed check; a check that cannot be made comes back with `error` set and `pass: false`.
 */
export async function checkAssertion(
  a: Assertion,
  reply: string,
  transcript: Message[],
  judgeCtx: JudgeContext | undefined,
  where: string,
): Promise<AssertionResult> {
  switch (a.type) {
    case 'contains':
      return {
        type: a.type,
        label: `contains ${JSON.stringify(a.value)}`,
        pass: norm(reply, a.ignore_case).includes(norm(a.value, a.ignore_case)),
      };
    case 'contains_any':
      return {
        type: a.type,
        label: `contains any of ${JSON.stringify(a.value)}`,
        pass: a.value.some((v) => norm(reply, a.ignore_case).includes(norm(v, a.ignore_case))),
      };
    case 'not_contains':
      return {
        type: a.type,
        label: `does not contain ${JSON.stringify(a.value)}`,
        pass: !norm(reply, a.ignore_case).includes(norm(a.value, a.ignore_case)),
      };
    case 'regex':
      return { type: a.type, label: `matches /${a.value}/`, pass: new RegExp(a.value, 'u').test(reply) };
    case 'not_regex':
      return { type: a.type, label: `does not match /${a.value}/`, pass: !new RegExp(a.value, 'u').test(reply) };
    case 'max_length':
      return {
        type: a.type,
        label: `at most ${a.value} characters`,
        pass: [...reply].length <= a.value,
        detail: `${[...reply].length} characters`,
      };
    case 'json_schema': {
      const r = checkJsonSchema(reply, a.value);
      return { type: a.type, label: 'valid JSON for schema', pass: r.valid, detail: r.errors.join('; ') || undefined };
    }
    case 'refusal': {
      const refused = isRefusal(reply);
      return { type: a.type, label: a.expected ? 'refuses' : 'does not refuse', pass: refused === a.expected };
    }
    case 'judge': {
      const label = `judge ≥ ${a.min_score}: ${a.rubric.slice(0, 60)}`;
      if (!judgeCtx) {
        return { type: a.type, label, pass: false, error: 'no judge model configured (suite key `judge.model`)' };
      }
      try {
        const v = await judge(judgeCtx.model, a.rubric, transcript, judgeCtx.scale, where);
        return { type: a.type, label, pass: v.score >= a.min_score, score: v.score, detail: v.reason };
      } catch (e) {
        return { type: a.type, label, pass: false, error: (e as Error).message };
      }
    }
  }
}
