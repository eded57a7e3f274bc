import { LoomError } from './errors.ts';

/**
 * mulberry32 uniforms and Box-Muller normals: small, fast and identical on every platform, so a seed reproduces
 * a random model (`loom model new --seed`) or a sampled generation on any machine. Kept beside `Rng` rather than
 * folded into it: switching these callers to xoshiro would change every model and sample an existing seed gives.
 */
export class Mulberry32 {
  private state: number;
  private spare: number | undefined;
  constructor(seed = 0) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal; draws two uniforms per pair of normals. */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = this.next();
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

/** Checkpointable generator state: four uint32 words. */
export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * xoshiro128** seeded through splitmix32, for training (data order, dropout, init) and resampling statistics.
 * Its whole state is four uint32s, so checkpoints can store it and a resumed run draws exactly the numbers the
 * uninterrupted run would have drawn.
 */
export class Rng {
  private s: Uint32Array;

  constructor(seed: number | RngState = 12345) {
    if (typeof seed === 'number') {
      const sm = splitmix32(seed);
      this.s = new Uint32Array([sm(), sm(), sm(), sm()]);
      if (this.s.every((x) => x === 0)) this.s[0] = 1;
    } else {
      this.s = new Uint32Array(seed);
    }
  }

  restore(s: RngState): void {
    this.s = new Uint32Array(s);
  }

  state(): RngState {
    return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!];
  }

  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Integer in [0, n) by scaling a uniform (training's data order is defined by this draw). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [0, n) without modulo bias (rejection sampling), for resampling statistics. */
  intUnbiased(n: number): number {
    if (n <= 0 || n > 2 ** 32) throw new LoomError('INTERNAL', `Rng.intUnbiased bound out of range: ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x: number;
    do x = this.nextU32();
    while (x >= limit);
    return x % n;
  }

  bit(): boolean {
    return (this.nextU32() & 1) === 1;
  }

  /** Standard normal (Box-Muller), for weight initialisation. */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}
