import type { Scenario } from '../../config/eval.ts';
import type { ChatModel, GenerationSettings, Message, Usage } from '../../core/types.ts';
import { type AssertionResult, checkAssertion, type JudgeContext } from './assertions.ts';

export interface TurnResult {
  turn: number;
  user: string;
  assistant: string;
  checks: AssertionResult[];
  /** The goal's checks on this turn (until the goal is met), shown so a report says why it was or was not met. */
  goal?: AssertionResult[];
}

export interface ConversationResult {
  scenario: string;
  lang: string;
  title?: string;
  turns: TurnResult[];
  conversationChecks: AssertionResult[];
  goalAchieved: boolean;
  /** 1-based assistant turn at which the goal was first met; undefined when never met. */
  turnsToResolution?: number;
  policyViolations: { turn: number; label: string }[];
  /** Every assertion (per-turn, per-numbered-turn, conversation, policy) passed and the goal was met. */
  passed: boolean;
  errors: string[];
  usage: Usage;
}

export interface ConversationOptions {
  settings?: GenerationSettings;
  /** Plays the customer in `simulated` scenarios. */
  userModel?: ChatModel;
  judge?: JudgeContext;
  /** Prompt system text used when the scenario has none (the suite's prompt under test). */
  system?: string;
  /**
   * The prompt's few-shot turns: sent to the model under test after the system text, before the conversation, but
   * not part of the transcript that checks, the judge and the user simulator see.
   */
  fewShot?: { user: string; assistant: string }[];
}

const DONE = '[DONE]';

/** The simulator sees the conversation from the customer's side: roles are swapped. */
function userSimulatorMessages(
  s: Extract<Scenario['user'], { mode: 'simulated' }>,
  lang: string,
  transcript: Message[],
) {
  const system =
    `You are role-playing a customer of an online shop talking to its customer-service assistant. ${s.persona}\n` +
    `Write only the customer's next message, in ${lang === 'zh' ? 'Chinese' : 'English'}, in one or two sentences. ` +
    `When your problem is solved or the assistant cannot help further, reply exactly ${DONE}.`;
  const msgs: Message[] = [{ role: 'system', content: system }];
  for (const m of transcript) {
    if (m.role === 'user') msgs.push({ role: 'assistant', content: m.content });
    else if (m.role === 'assistant') msgs.push({ role: 'user', content: m.content });
  }
  return msgs;
}

/** Runs one scenario against the model under test and checks every assertion. */
export async function runScenario(
  scenario: Scenario,
  model: ChatModel,
  opts: ConversationOptions = {},
): Promise<ConversationResult> {
  const system = scenario.system ?? opts.system;
  const transcript: Message[] = system ? [{ role: 'system', content: system }] : [];
  const head = transcript.length;
  const shots: Message[] = (opts.fewShot ?? []).flatMap((t) => [
    { role: 'user' as const, content: t.user },
    { role: 'assistant' as const, content: t.assistant },
  ]);
  const result: ConversationResult = {
    scenario: scenario.id,
    lang: scenario.lang,
    title: scenario.title,
    turns: [],
    conversationChecks: [],
    goalAchieved: false,
    policyViolations: [],
    passed: false,
    errors: [],
    usage: { promptTokens: 0, completionTokens: 0 },
  };
  const maxTurns = scenario.user.mode === 'scripted' ? scenario.user.turns.length : scenario.user.max_turns;
  let nextUser: string | undefined = scenario.user.mode === 'scripted' ? scenario.user.turns[0] : scenario.user.opening;

  for (let turn = 1; turn <= maxTurns && nextUser !== undefined; turn++) {
    transcript.push({ role: 'user', content: nextUser });
    let reply: string;
    try {
      const r = await model.chat(
        shots.length ? [...transcript.slice(0, head), ...shots, ...transcript.slice(head)] : transcript,
        opts.settings,
      );
      reply = r.text;
      result.usage.promptTokens += r.usage.promptTokens;
      result.usage.completionTokens += r.usage.completionTokens;
    } catch (e) {
      result.errors.push(`turn ${turn}: model call failed: ${(e as Error).message}`);
      break;
    }
    transcript.push({ role: 'assistant', content: reply });
    const where = `scenario ${scenario.id} turn ${turn}`;
    const checks: AssertionResult[] = [];
    let goalChecks: AssertionResult[] | undefined;
    for (const a of [...scenario.per_turn, ...(scenario.turns[String(turn)] ?? [])]) {
      checks.push(await checkAssertion(a, reply, transcript, opts.judge, where));
    }
    for (const a of scenario.policy) {
      const r = await checkAssertion(a, reply, transcript, opts.judge, where);
      if (!r.pass) result.policyViolations.push({ turn, label: r.label });
      checks.push({ ...r, label: `policy: ${r.label}` });
    }
    if (!result.goalAchieved && scenario.goal.length > 0) {
      const goal = await Promise.all(scenario.goal.map((a) => checkAssertion(a, reply, transcript, opts.judge, where)));
      if (goal.every((g) => g.pass)) {
        result.goalAchieved = true;
        result.turnsToResolution = turn;
      }
      for (const g of goal) if (g.error) checks.push({ ...g, label: `goal: ${g.label}` });
      goalChecks = goal;
    }
    result.turns.push({ turn, user: nextUser, assistant: reply, checks, goal: goalChecks });

    if (scenario.user.mode === 'scripted') {
      nextUser = scenario.user.turns[turn];
    } else if (turn < maxTurns) {
      if (!opts.userModel) {
        result.errors.push(`scenario ${scenario.id} is simulated but the task names no user_model`);
        break;
      }
      try {
        const u = await opts.userModel.chat(userSimulatorMessages(scenario.user, scenario.lang, transcript), {
          ...opts.settings,
          temperature: opts.settings?.temperature ?? 0.7,
        });
        nextUser = u.text.trim() === DONE || u.text.trim() === '' ? undefined : u.text.trim();
      } catch (e) {
        result.errors.push(`turn ${turn}: user simulator failed: ${(e as Error).message}`);
        nextUser = undefined;
      }
    }
  }
  const lastReply = result.turns.at(-1)?.assistant ?? '';
  for (const a of scenario.conversation) {
    result.conversationChecks.push(
      await checkAssertion(a, lastReply, transcript, opts.judge, `scenario ${scenario.id} (whole conversation)`),
    );
  }
  if (scenario.goal.length === 0) result.goalAchieved = result.turns.length > 0 && result.errors.length === 0;
  const allChecks = [...result.turns.flatMap((t) => t.checks), ...result.conversationChecks];
  for (const c of allChecks) if (c.error) result.errors.push(c.error);
  result.passed = result.errors.length === 0 && result.goalAchieved && allChecks.every((c) => c.pass);
  return result;
}
