/**
 * Union-find over dense row indices in a growable Int32Array (4 bytes per row), path halving, and the smaller
 * index as root so results do not depend on union order.
 */
export class UnionFind {
  private parent: Int32Array;
  private n = 0;

  constructor(capacity = 1024) {
    this.parent = new Int32Array(Math.max(16, capacity));
  }

  get size(): number {
    return this.n;
  }

  /** Adds a singleton and returns its index (indices are 0, 1, 2, … in call order). */
  add(): number {
    if (this.n === this.parent.length) {
      const grown = new Int32Array(this.parent.length * 2);
      grown.set(this.parent);
      this.parent = grown;
    }
    this.parent[this.n] = this.n;
    return this.n++;
  }

  find(x: number): number {
    const p = this.parent;
    while (p[x]! !== x) {
      const gp = p[p[x]!]!;
      p[x] = gp;
      x = gp;
    }
    return x;
  }

  /** Joins the sets of a and b; returns true when they were separate. */
  union(a: number, b: number): boolean {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return false;
    if (ra < rb) this.parent[rb] = ra;
    else this.parent[ra] = rb;
    return true;
  }

  bytes(): number {
    return this.parent.byteLength;
  }
}
