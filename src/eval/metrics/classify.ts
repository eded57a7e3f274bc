/**
 * Classification scores: accuracy, per-class precision/recall/F1/support, micro/macro/weighted averages and the
 * confusion matrix (sklearn's definitions, zero_division=0), plus a label extractor for free-text generations.
 */
import { LoomError } from '../../core/errors.ts';
import { compilePattern } from './text.ts';

/** Column of the confusion matrix for predictions that are not a known label (or nothing was extracted). */
export const NO_LABEL = '(none)';

export interface Prf {
  precision: number;
  recall: number;
  f1: number;
}

export interface ClassReport extends Prf {
  label: string;
  support: number;
}

export interface ClassificationReport {
  n: number;
  accuracy: number;
  labels: string[];
  perClass: ClassReport[];
  micro: Prf;
  macro: Prf;
  weighted: Prf;
  /** rows = gold labels, columns = labels + NO_LABEL (predictions outside the label set). */
  confusion: { rows: string[]; columns: string[]; matrix: number[][] };
}

function prf(tp: number, fp: number, fn: number): Prf {
  const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
  const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

/**
 * Scores predicted labels against gold labels. `labels` fixes the label set (default: sorted union of gold and
 * predicted labels); a prediction of null or of a label outside the set is a miss for its gold class and a false
 * positive for none.
 */
export function classificationReport(
  gold: readonly string[],
  pred: readonly (string | null | undefined)[],
  labels?: readonly string[],
): ClassificationReport {
  if (gold.length !== pred.length) {
    throw new LoomError('METRIC_INPUT', `${gold.length} gold labels but ${pred.length} predictions`);
  }
  if (gold.length === 0) throw new LoomError('METRIC_INPUT', 'no examples to score');
  const set =
    labels !== undefined
      ? [...labels]
      : [...new Set([...gold, ...pred.filter((p): p is string => typeof p === 'string')])].sort();
  const index = new Map(set.map((l, i) => [l, i]));
  const k = set.length;
  const matrix = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  const extraRows = new Map<string, number[]>();
  let correct = 0;
  for (let i = 0; i < gold.length; i++) {
    const g = gold[i];
    const p = pred[i];
    if (p === g) correct++;
    const col = p !== null && p !== undefined && index.has(p) ? index.get(p)! : k;
    const gi = index.get(g);
    if (gi !== undefined) matrix[gi][col]++;
    else {
      // Gold label outside an explicit label set: still counted for accuracy, kept in its own row.
      const row = extraRows.get(g) ?? new Array<number>(k + 1).fill(0);
      row[col]++;
      extraRows.set(g, row);
    }
  }
  const fps: number[] = [];
  const perClass: ClassReport[] = set.map((label, c) => {
    const tp = matrix[c][c];
    let fp = 0;
    for (let r = 0; r < k; r++) if (r !== c) fp += matrix[r][c];
    for (const row of extraRows.values()) fp += row[c];
    fps.push(fp);
    let support = 0;
    for (let col = 0; col <= k; col++) support += matrix[c][col];
    return { label, support, ...prf(tp, fp, support - tp) };
  });
  let tpAll = 0;
  let fpAll = 0;
  let fnAll = 0;
  perClass.forEach((r, c) => {
    tpAll += matrix[c][c];
    fnAll += r.support - matrix[c][c];
    fpAll += fps[c];
  });
  const totalSupport = perClass.reduce((s, r) => s + r.support, 0);
  const avg = (w: (r: ClassReport) => number, denom: number): Prf => ({
    precision: denom ? perClass.reduce((s, r) => s + w(r) * r.precision, 0) / denom : 0,
    recall: denom ? perClass.reduce((s, r) => s + w(r) * r.recall, 0) / denom : 0,
    f1: denom ? perClass.reduce((s, r) => s + w(r) * r.f1, 0) / denom : 0,
  });
  const rows = [...set, ...extraRows.keys()];
  return {
    n: gold.length,
    accuracy: correct / gold.length,
    labels: set,
    perClass,
    micro: prf(tpAll, fpAll, fnAll),
    macro: avg(() => 1, k),
    weighted: avg((r) => r.support, totalSupport),
    confusion: { rows, columns: [...set, NO_LABEL], matrix: [...matrix, ...extraRows.values()] },
  };
}

export interface ExtractOptions {
  /** 'first': the label mentioned earliest in the text (longest on ties). 'regex': group 1 (or the match) of `pattern`. */
  mode?: 'first' | 'regex';
  pattern?: string;
  ignoreCase?: boolean;
}

const WORDISH = /[\p{L}\p{N}_]/u;
const ASCII_WORD = /^[\x00-\x7f]*$/;

function findLabel(hay: string, needle: string): number {
  // ASCII labels must stand as words ("refund" should not match inside "refunds_policy"); CJK labels are substrings.
  const wordy = ASCII_WORD.test(needle);
  let from = 0;
  for (;;) {
    const at = hay.indexOf(needle, from);
    if (at < 0) return -1;
    if (!wordy) return at;
    const before = at > 0 ? hay[at - 1] : '';
    const after = hay[at + needle.length] ?? '';
    if (!(before && WORDISH.test(before)) && !(after && WORDISH.test(after))) return at;
    from = at + 1;
  }
}

/** Pulls a label out of a generation; null when none of the labels is found. */
export function extractLabel(text: string, labels: readonly string[], opts: ExtractOptions = {}): string | null {
  const ic = opts.ignoreCase ?? true;
  const norm = (s: string) => (ic ? s.toLowerCase() : s);
  if ((opts.mode ?? 'first') === 'regex') {
    if (!opts.pattern)
      throw new LoomError('METRIC_OPTION', 'regex label extraction needs a pattern', { field: 'pattern' });
    const m = compilePattern(opts.pattern).exec(text);
    if (!m) return null;
    const got = norm((m[1] ?? m[0]).trim());
    return labels.find((l) => norm(l) === got) ?? null;
  }
  const hay = norm(text);
  let best: string | null = null;
  let bestAt = Number.POSITIVE_INFINITY;
  for (const l of labels) {
    if (!l) continue;
    const at = findLabel(hay, norm(l));
    if (at < 0) continue;
    if (at < bestAt || (at === bestAt && best !== null && l.length > best.length)) {
      best = l;
      bestAt = at;
    }
  }
  return best;
}
