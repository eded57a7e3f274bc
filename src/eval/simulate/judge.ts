import { LoomError } from '../../core/errors.ts';
import type { ChatModel, Message } from '../../core/types.ts';

export interface JudgeVerdict {
  score: number;
  reason: string;
  raw: string;
}

/**
 * Asks a judge model to score a transcript against a rubric on a stated scale. The judge must answer with JSON
 * `{"score": n, "reason": "..."}`; a bare `score: n` line is accepted too. Anything else is a JUDGE error that
 * names the scenario and shows the reply, so a flaky judge is visible rather than silently scored as failure.
 */
export async function judge(
  model: ChatModel,
  rubric: string,
  transcript: Message[],
  scale: readonly [number, number],
  where: string,
): Promise<JudgeVerdict> {
  const convo = transcript.map((m) => `${m.role.toUpperCase()}: ${m.content}`).join('\n');
  const prompt: Message[] = [
    {
      role: 'system',
      content:
        'You are a strict evaluator of customer-service conversations. Score the ASSISTANT only. ' +
        `Use an integer scale from ${scale[0]} (worst) to ${scale[1]} (best). ` +
        'Reply with JSON only: {"score": <integer>, "reason": "<one sentence>"}.',
    },
    { role: 'user', content: `Rubric:\n${rubric}\n\nConversation:\n${convo}` },
  ];
  const reply = await model.chat(prompt, { temperature: 0, maxNewTokens: 200 });
  return parseVerdict(reply.text, scale, where);
}

export function parseVerdict(raw: string, scale: readonly [number, number], where: string): JudgeVerdict {
  let score: number | undefined;
  let reason = '';
  const json = raw.match(/\{[\s\S]*\}/);
  if (json) {
    try {
      const o = JSON.parse(json[0]) as { score?: unknown; reason?: unknown };
      if (typeof o.score === 'number') score = o.score;
      else if (typeof o.score === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(o.score)) score = Number(o.score);
      if (typeof o.reason === 'string') reason = o.reason;
    } catch {
      // fall through to the plain-text form
    }
  }
  if (score === undefined) {
    const m = raw.match(/score\s*[:：=]\s*(-?\d+(?:\.\d+)?)/i);
    if (m) score = Number(m[1]);
  }
  if (score === undefined || !Number.isFinite(score) || score < scale[0] || score > scale[1]) {
    throw new LoomError(
      'PROVIDER',
      `judge reply for ${where} does not parse as a score in [${scale[0]}, ${scale[1]}]: ${JSON.stringify(raw.slice(0, 200))}`,
      { hint: 'use a judge model that follows instructions, or lower its temperature' },
    );
  }
  return { score, reason, raw };
}
