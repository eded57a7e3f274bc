/**
 * How the PII detectors (src/data/pii.ts, src/data/pii-cn.ts) are run over a text, and the cheap pre-filters that
 * let most detectors skip most texts. Every pre-filter is a condition that each match of its detector's regex
 * implies (an email holds '@', a resident ID a run of 17 digits), so skipping the regex when it is false cannot
 * lose a match: findings are identical with and without them (test/data/pii-prefilter.test.ts checks this on the
 * guard and data corpora). One pass over the text gathers the facts they read.
 */
import type { PiiType } from '../config/data-clean.ts';

export interface TextFacts {
  text: string;
  /** Longest run of ASCII digits. */
  digitRun: number;
  /** Counts, capped at 3 (no pre-filter needs more). */
  colons: number;
  dots: number;
  at: boolean;
  plus: boolean;
}

export interface Detector {
  type: PiiType;
  re: RegExp;
  accept(m: string, text: string, index: number): boolean;
  /** Pre-filter: false means the regex cannot match this text. */
  may?(f: TextFacts): boolean;
  /**
   * Anchored scan for a regex whose every match holds one of `chars` at most `lead` characters after its
   * start: the regex is tried (sticky) only at the positions up to `lead` before such a character, in order,
   * which finds the same matches as a global scan without walking the whole text.
   */
  anchor?: { chars: RegExp; lead: number };
}

export function factsOf(text: string): TextFacts {
  let run = 0;
  let digitRun = 0;
  let colons = 0;
  let dots = 0;
  let at = false;
  let plus = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      run++;
      if (run > digitRun) digitRun = run;
      continue;
    }
    run = 0;
    if (c === 58) colons = Math.min(3, colons + 1);
    else if (c === 46) dots = Math.min(3, dots + 1);
    else if (c === 64) at = true;
    else if (c === 43) plus = true;
  }
  return { text, digitRun, colons, dots, at, plus };
}

/** The matches of `d.re` (a global regex) in `text`, in the order and with the extent a global scan gives. */
export function* matchesOf(d: Detector, text: string, anchored: boolean): Generator<RegExpExecArray> {
  if (!anchored || !d.anchor) {
    d.re.lastIndex = 0;
    for (let m = d.re.exec(text); m; m = d.re.exec(text)) {
      yield m;
      if (m[0].length === 0) d.re.lastIndex++;
    }
    return;
  }
  const sticky = stickyOf(d.re);
  const chars = new RegExp(d.anchor.chars.source, 'g');
  // A global scan from `from` returns the leftmost match starting at or after it. Every match start lies within
  // `lead` before an anchor character at or after it, so trying those positions in increasing order (each once)
  // meets the same leftmost match first.
  let from = 0;
  let tried = -1;
  for (let a = chars.exec(text); a; a = chars.exec(text)) {
    if (a.index < from) continue;
    for (let p = Math.max(from, tried + 1, a.index - d.anchor.lead); p <= a.index; p++) {
      tried = p;
      sticky.lastIndex = p;
      const m = sticky.exec(text);
      if (!m || m[0].length === 0) continue;
      yield m;
      from = p + m[0].length;
      tried = from - 1;
      // The match holds this anchor character (an earlier one would have found it first): go on after it.
      chars.lastIndex = from;
      break;
    }
  }
}

const stickies = new WeakMap<RegExp, RegExp>();
function stickyOf(re: RegExp): RegExp {
  let s = stickies.get(re);
  if (!s) {
    s = new RegExp(re.source, re.flags.replace('g', '') + 'y');
    stickies.set(re, s);
  }
  return s;
}
