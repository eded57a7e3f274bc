/**
 * Similarity layer: character 3-gram containment against a store of known attacks (data/guard/attacks.jsonl).
 * Why character n-grams: they work the same for Chinese (no word boundaries) and English, survive small edits,
 * and cost microseconds with an inverted index. Score = the largest share of a stored attack's n-grams found in
 * the message (containment, so an attack embedded in a longer benign message still scores high).
 */
import { readFileSync } from 'node:fs';
import { LoomError } from '../core/errors.ts';
import { normalizeForGuard } from './normalize.ts';
import type { GuardLabel } from './rules.ts';

export interface StoredAttack {
  text: string;
  label: GuardLabel;
  lang?: string;
}

export interface SimilarityHit {
  label: GuardLabel;
  score: number;
  /** Index of the stored attack (for the verdict's evidence). */
  index: number;
}

/**
 * Character 3-grams as numbers (three UTF-16 units packed into 48 bits, exact in a double): no substring per
 * position, which made long pastes the slowest part of the layer. Whitespace runs count as one space, as the
 * guard's views already have them.
 */
function gramKeys(s: string, visit: (key: number) => void): void {
  const t = /[^\S ]| {2}/.test(s) ? s.replace(/\s+/g, ' ') : s;
  for (let i = 0; i + 3 <= t.length; i++)
    visit(t.charCodeAt(i) * 4294967296 + t.charCodeAt(i + 1) * 65536 + t.charCodeAt(i + 2));
}

function charGrams(s: string): Set<number> {
  const out = new Set<number>();
  gramKeys(s, (k) => out.add(k));
  return out;
}

export class AttackStore {
  private readonly labels: GuardLabel[] = [];
  private readonly sizes: number[] = [];
  private readonly index = new Map<number, number[]>();

  constructor(attacks: readonly StoredAttack[]) {
    for (const a of attacks) {
      const grams = charGrams(normalizeForGuard(a.text).text);
      // Very short entries would match everything that shares a few characters.
      if (grams.size < 8) continue;
      const id = this.labels.length;
      this.labels.push(a.label);
      this.sizes.push(grams.size);
      for (const g of grams) {
        const list = this.index.get(g);
        if (list) list.push(id);
        else this.index.set(g, [id]);
      }
    }
  }

  get size(): number {
    return this.labels.length;
  }

  /** Best containment per label over the views. */
  query(views: readonly string[]): SimilarityHit[] {
    const best = new Map<GuardLabel, SimilarityHit>();
    for (const v of views) {
      // Only grams that some stored attack holds are kept: a long benign paste touches the index, not a set.
      const hit = new Set<number>();
      gramKeys(v, (k) => {
        if (this.index.has(k)) hit.add(k);
      });
      const counts = new Map<number, number>();
      for (const g of hit) {
        for (const id of this.index.get(g)!) counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      for (const [id, c] of counts) {
        const score = c / this.sizes[id]!;
        const label = this.labels[id]!;
        const prev = best.get(label);
        if (!prev || score > prev.score) best.set(label, { label, score, index: id });
      }
    }
    return [...best.values()];
  }
}

/** Reads a JSONL store; bad lines are errors naming file and line. */
export function loadAttackStore(file: string): AttackStore {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LoomError('INPUT_NOT_FOUND', `cannot read attack store ${file}`, {
      file,
      cause: e,
      hint: 'point guard.similarity.store at a JSONL file of {"text","label"} lines',
    });
  }
  const attacks: StoredAttack[] = [];
  raw.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new LoomError('INPUT_MALFORMED', 'not valid JSON', { file, line: i + 1, cause: e });
    }
    const r = o as Partial<StoredAttack>;
    if (typeof r.text !== 'string' || (r.label !== 'injection' && r.label !== 'jailbreak' && r.label !== 'harmful')) {
      throw new LoomError('INPUT_MALFORMED', 'each line needs "text" and "label" (injection|jailbreak|harmful)', {
        file,
        line: i + 1,
        field: 'label',
      });
    }
    attacks.push({ text: r.text, label: r.label, lang: r.lang });
  });
  return new AttackStore(attacks);
}
