/**
 * Stopping: EOS ids, max new tokens, and stop strings that may span token boundaries.
 *
 * API:
 *   new StopStrings(stops)   .push(text) -> { text, stopped }   text = what is safe to show now; the tail that
 *                            could still become a stop string is held back until later text settles it.
 *                            .flush() -> held text (call when generation ends for another reason)
 *   findStop(text, stops)  -> { index, stop } | null   earliest occurrence of any stop string
 *   isEos(id, eosIds)      -> boolean
 * The stop string itself is never emitted (OpenAI semantics).
 */

export function findStop(text: string, stops: readonly string[]): { index: number; stop: string } | null {
  let best: { index: number; stop: string } | null = null;
  for (const s of stops) {
    if (!s) continue;
    const i = text.indexOf(s);
    if (i >= 0 && (best === null || i < best.index)) best = { index: i, stop: s };
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
export function heldSuffixLength(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops) {
    const max = Math.min(s.length - 1, text.length);
    for (let n = max; n > hold; n--) {
      if (text.endsWith(s.slice(0, n))) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

export class StopStrings {
  private readonly stops: string[];
  private pending = '';
  private done = false;

  constructor(stops: readonly string[] = []) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.done;
  }

  push(text: string): { text: string; stopped: boolean } {
    if (this.done) return { text: '', stopped: true };
    const all = this.pending + text;
    const hit = findStop(all, this.stops);
    if (hit) {
      this.done = true;
      this.pending = '';
      return { text: all.slice(0, hit.index), stopped: true };
    }
    const hold = heldSuffixLength(all, this.stops);
    this.pending = all.slice(all.length - hold);
    return { text: all.slice(0, all.length - hold), stopped: false };
  }

  flush(): string {
    const t = this.pending;
    this.pending = '';
    return this.done ? '' : t;
  }
}
