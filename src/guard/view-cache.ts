/**
 * Per-turn normalisation cache. A chat request carries the whole history, and every earlier user turn was
 * normalised when it was new; normalising each turn on its own (then joining the views) lets those views be
 * reused, so a long chat pays normalisation only for its new turn. Rules and similarity still read the joined view.
 * Keys are SHA-256 digests of the turn text (a collision would hand one text another's view, so no weak hash);
 * the cache is a bounded LRU (a Map in insertion order, re-inserted on a hit).
 */
import { createHash } from 'node:crypto';
import { type GuardView, normalizeForGuard } from './normalize.ts';

export class ViewCache {
  private readonly views = new Map<string, GuardView>();
  hits = 0;
  misses = 0;
  constructor(private readonly capacity: number) {}

  /** The normalised view of `text`, from the cache when it was seen; callers must not change it. */
  view(text: string): GuardView {
    if (this.capacity <= 0) return normalizeForGuard(text);
    const key = createHash('sha256').update(text).digest('base64');
    const hit = this.views.get(key);
    if (hit) {
      this.hits++;
      this.views.delete(key);
      this.views.set(key, hit);
      return hit;
    }
    this.misses++;
    const v = normalizeForGuard(text);
    this.views.set(key, v);
    if (this.views.size > this.capacity) this.views.delete(this.views.keys().next().value as string);
    return v;
  }

  get size(): number {
    return this.views.size;
  }
}

/**
 * The views of several turns as one: texts joined by a space (normalisation collapses every run of whitespace,
 * newlines included, to one space, so this is where a newline between turns would have ended up), decoded
 * payloads in turn order, transforms in order of first use. Fresh arrays: cached views are never shared out.
 */
export function joinViews(views: readonly GuardView[]): GuardView {
  if (views.length === 1) {
    const v = views[0]!;
    return { text: v.text, decoded: [...v.decoded], transforms: [...v.transforms] };
  }
  return {
    text: views
      .map((v) => v.text)
      .filter((t) => t !== '')
      .join(' '),
    decoded: views.flatMap((v) => v.decoded),
    transforms: [...new Set(views.flatMap((v) => v.transforms))],
  };
}
