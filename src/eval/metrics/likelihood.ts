/**
 * Log-likelihood based scoring: perplexity from per-token log-probabilities, and multiple-choice accuracy from
 * per-choice log-likelihoods (acc = argmax log-likelihood; acc_norm = argmax log-likelihood per character of the
 * choice text, lm-evaluation-harness style). Loaders read C-Eval / CMMLU / MMLU style CSV and JSONL files.
 * Computing the log-likelihoods is the model's job; these functions only score them.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { LoomError } from '../../core/errors.ts';
import { readJsonlRows } from './run.ts';

/** Perplexity exp(−mean log p) over all tokens of one or many sequences (natural-log probabilities). */
export function perplexity(logprobs: readonly number[] | readonly (readonly number[])[]): number {
  return Math.exp(meanNll(logprobs));
}

/** Mean negative log-likelihood per token (nats). */
export function meanNll(logprobs: readonly number[] | readonly (readonly number[])[]): number {
  let sum = 0;
  let n = 0;
  for (const x of logprobs as readonly (number | readonly number[])[]) {
    if (typeof x === 'number') {
      sum += x;
      n++;
    } else {
      for (const y of x) sum += y;
      n += x.length;
    }
  }
  if (n === 0) throw new LoomError('METRIC_INPUT', 'perplexity needs at least one token log-probability');
  if (Number.isNaN(sum)) throw new LoomError('METRIC_INPUT', 'log-probabilities contain NaN');
  return -sum / n;
}

export interface ChoiceItem {
  id?: string;
  question: string;
  choices: string[];
  /** Index of the correct choice. */
  answer: number;
  subject?: string;
}

export interface ChoiceResult {
  pred: number;
  predNorm: number;
  correct: boolean;
  correctNorm: boolean;
}

function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** Scores one item from the summed log-likelihood of each choice's continuation. */
export function scoreChoice(
  item: ChoiceItem,
  logliks: readonly number[],
  choiceTexts?: readonly string[],
): ChoiceResult {
  if (logliks.length !== item.choices.length) {
    throw new LoomError(
      'METRIC_INPUT',
      `item ${item.id ?? ''} has ${item.choices.length} choices but ${logliks.length} log-likelihoods`,
    );
  }
  const texts = choiceTexts ?? item.choices;
  const pred = argmax(logliks);
  const predNorm = argmax(logliks.map((l, i) => l / Math.max(1, [...texts[i]].length)));
  return { pred, predNorm, correct: pred === item.answer, correctNorm: predNorm === item.answer };
}

export function scoreChoices(
  items: readonly ChoiceItem[],
  logliks: readonly (readonly number[])[],
  choiceTexts?: readonly (readonly string[])[],
): { acc: number; accNorm: number; n: number; results: ChoiceResult[] } {
  if (items.length !== logliks.length) {
    throw new LoomError('METRIC_INPUT', `${items.length} items but ${logliks.length} log-likelihood rows`);
  }
  if (items.length === 0) throw new LoomError('METRIC_INPUT', 'no items to score');
  const results = items.map((it, i) => scoreChoice(it, logliks[i], choiceTexts?.[i]));
  const acc = results.filter((r) => r.correct).length / results.length;
  const accNorm = results.filter((r) => r.correctNorm).length / results.length;
  return { acc, accNorm, n: results.length, results };
}

const LETTERS = 'ABCDEFGHIJ';

function answerIndex(raw: unknown, nChoices: number, where: { file: string; line: number }): number {
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw < nChoices) return raw;
  const s = String(raw ?? '')
    .trim()
    .toUpperCase();
  const i = LETTERS.indexOf(s);
  if (s.length === 1 && i >= 0 && i < nChoices) return i;
  if (/^\d+$/.test(s) && Number(s) < nChoices) return Number(s);
  throw new LoomError('INPUT_MALFORMED', `answer ${JSON.stringify(raw)} is not one of ${LETTERS.slice(0, nChoices)}`, {
    ...where,
    field: 'answer',
  });
}

/**
 * Reads multiple-choice items. CSV with a header naming question/A/B/C/D/answer (C-Eval, CMMLU; extra columns
 * such as id or explanation are ignored), headerless CSV in MMLU order (question, A, B, C, D, answer), or JSONL
 * with {question, A…D, answer} or {question, choices: [...], answer}.
 */
export function loadMultipleChoice(path: string, subject?: string): ChoiceItem[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new LoomError('INPUT_NOT_FOUND', `cannot read ${path}`, { file: path, cause: e });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (/\.jsonl$/i.test(path)) {
    const items: ChoiceItem[] = [];
    for (const { line, value: row } of readJsonlRows(path, 'multiple-choice file')) {
      const choices = Array.isArray(row.choices)
        ? row.choices.map(String)
        : [...LETTERS].filter((l) => row[l] !== undefined).map((l) => String(row[l]));
      const q = row.question ?? row.Question;
      if (typeof q !== 'string' || choices.length < 2) {
        throw new LoomError('INPUT_MALFORMED', 'a row needs a question and at least two choices', {
          file: path,
          line,
        });
      }
      items.push({
        id: row.id === undefined ? String(items.length) : String(row.id),
        question: q,
        choices,
        answer: answerIndex(row.answer ?? row.Answer, choices.length, { file: path, line }),
        subject: typeof row.subject === 'string' ? row.subject : subject,
      });
    }
    return items;
  }
  let rows: string[][];
  try {
    rows = parse(text, { relax_column_count: true, skip_empty_lines: true }) as string[][];
  } catch (e) {
    throw new LoomError('INPUT_MALFORMED', `bad CSV: ${(e as Error).message}`, { file: path });
  }
  if (rows.length === 0) throw new LoomError('METRIC_INPUT', `${path} has no rows`, { file: path });
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const hasHeader = header.includes('question') && header.includes('answer');
  const col = (name: string) => header.indexOf(name.toLowerCase());
  const items: ChoiceItem[] = [];
  const body = hasHeader ? rows.slice(1) : rows;
  body.forEach((r, i) => {
    const line = i + 1 + (hasHeader ? 1 : 0);
    let question: string;
    let choices: string[];
    let answer: unknown;
    let id: string;
    if (hasHeader) {
      const letters = [...LETTERS].filter((l) => col(l) >= 0);
      question = r[col('question')] ?? '';
      choices = letters.map((l) => r[col(l)] ?? '');
      answer = r[col('answer')];
      id = col('id') >= 0 ? r[col('id')] : String(i);
    } else {
      if (r.length < 4)
        throw new LoomError('INPUT_MALFORMED', 'expected question, choices…, answer', { file: path, line });
      question = r[0];
      choices = r.slice(1, -1);
      answer = r[r.length - 1];
      id = String(i);
    }
    if (choices.length < 2) throw new LoomError('INPUT_MALFORMED', 'fewer than two choices', { file: path, line });
    items.push({ id, question, choices, answer: answerIndex(answer, choices.length, { file: path, line }), subject });
  });
  return items;
}

/** The usual zero-shot prompt: question, lettered choices, "Answer:" (continuations are " A", " B", …). */
export function formatChoicePrompt(item: ChoiceItem, answerWord = 'Answer'): string {
  const lines = [item.question.trim(), ...item.choices.map((c, i) => `${LETTERS[i]}. ${c}`), `${answerWord}:`];
  return lines.join('\n');
}
