import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fmix32, hash53 } from '../../src/data/dedup/hash.ts';
import { estimateLshMemory } from '../../src/data/dedup/lsh.ts';
import {
  candidateProbability,
  estimateJaccard,
  makePermutations,
  minhashSignature,
} from '../../src/data/dedup/minhash.ts';
import { shingleHashes, tokensOf } from '../../src/data/dedup/shingle.ts';
import { UnionFind } from '../../src/data/dedup/union-find.ts';

describe('tokens and shingles', () => {
  it('splits CJK into characters and Latin into words, digits as 0', () => {
    assert.deepEqual(tokensOf('退款 refund 申请'), ['退', '款', 'refund', '申', '请']);
    assert.deepEqual(tokensOf('Order #12345 shipped!'), ['order', '00000', 'shipped']);
    assert.deepEqual(tokensOf('我的iPhone坏了，怎么办？'), ['我', '的', 'iphone', '坏', '了', '怎', '么', '办']);
    assert.deepEqual(tokensOf('Café naïve — ok'), ['café', 'naïve', 'ok']);
    assert.deepEqual(tokensOf('!!! ... ？？'), []);
  });

  it('uses word n-grams for Latin text and character n-grams for CJK text', () => {
    const opts = { shingleWords: 5, shingleChars: 3 };
    // 12 words → 12 - 5 + 1 = 8 shingles of 5 words.
    const en = shingleHashes('one two three four five six seven eight nine ten eleven twelve', opts);
    assert.equal(en.tokens, 12);
    assert.equal(en.n, 5);
    assert.equal(en.hashes.length, 8);
    // 10 Han characters → 10 - 3 + 1 = 8 shingles of 3 characters.
    const zh = shingleHashes('我想查询一下订单状态', opts);
    assert.equal(zh.tokens, 10);
    assert.equal(zh.cjkTokens, 10);
    assert.equal(zh.n, 3);
    assert.equal(zh.hashes.length, 8);
    // Mixed: 4 Han + 2 words → CJK-dominant (4*2 >= 6), 6 - 3 + 1 = 4 shingles.
    const mixed = shingleHashes('退款 refund 申请 status', opts);
    assert.equal(mixed.tokens, 6);
    assert.equal(mixed.n, 3);
    assert.equal(mixed.hashes.length, 4);
    // Fewer tokens than n → one shingle; no tokens → none.
    assert.equal(shingleHashes('hello world', opts).hashes.length, 1);
    assert.equal(shingleHashes('?!', opts).hashes.length, 0);
  });

  it('is case- and punctuation-insensitive, order-sensitive', () => {
    const opts = { shingleWords: 2, shingleChars: 2 };
    const a = Array.from(shingleHashes('Hello, World. Foo bar', opts).hashes);
    const b = Array.from(shingleHashes('hello world foo BAR!', opts).hashes);
    const c = Array.from(shingleHashes('world hello foo bar', opts).hashes);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });
});

describe('MinHash', () => {
  it('estimates Jaccard of constructed sets within 3.5 standard errors', () => {
    // A = {1..100}, B = {51..150}: |A∩B| = 50, |A∪B| = 150 → J = 1/3. C = {1..100} ∪ {201..225}: J(A,C) = 0.8.
    const set = (lo: number, hi: number, extra: number[] = []) =>
      Int32Array.from([...Array.from({ length: hi - lo + 1 }, (_, i) => lo + i), ...extra].map((x) => fmix32(x)));
    const A = set(1, 100);
    const B = set(51, 150);
    const C = set(
      1,
      100,
      Array.from({ length: 25 }, (_, i) => 201 + i),
    );
    const perms = makePermutations(1024, 11);
    const sa = minhashSignature(A, perms);
    const jab = estimateJaccard(sa, minhashSignature(B, perms));
    const jac = estimateJaccard(sa, minhashSignature(C, perms));
    const se = (j: number) => Math.sqrt((j * (1 - j)) / 1024);
    assert.ok(Math.abs(jab - 1 / 3) < 3.5 * se(1 / 3), `J(A,B) estimate ${jab}`);
    assert.ok(Math.abs(jac - 0.8) < 3.5 * se(0.8), `J(A,C) estimate ${jac}`);
    assert.equal(estimateJaccard(sa, minhashSignature(A, perms)), 1);
  });

  it('is insensitive to duplicate shingles and order (a set function)', () => {
    const perms = makePermutations(64, 3);
    const x = Int32Array.from([5, 9, 13, 21].map(fmix32));
    const y = Int32Array.from([21, 13, 13, 9, 5, 5].map(fmix32));
    assert.deepEqual(Array.from(minhashSignature(x, perms)), Array.from(minhashSignature(y, perms)));
  });

  it('gives the LSH S-curve of 14 bands x 8 rows', () => {
    // 1 - (1 - 0.8^8)^14: 0.8^8 = 0.16777216, 0.83222784^14 = 0.07644… → 0.9236 (FineWeb App. E.1 quotes 92 %).
    assert.ok(Math.abs(candidateProbability(0.8, 14, 8) - 0.9236) < 5e-4);
    assert.ok(Math.abs(candidateProbability(0.5, 14, 8) - (1 - (1 - 1 / 256) ** 14)) < 1e-12);
  });
});

describe('union-find', () => {
  it('is transitive and keeps the smallest index as root', () => {
    const uf = new UnionFind(2);
    for (let i = 0; i < 6; i++) uf.add();
    uf.union(4, 5);
    uf.union(1, 2);
    uf.union(2, 4);
    assert.equal(uf.find(5), 1);
    assert.equal(uf.find(4), uf.find(1));
    assert.notEqual(uf.find(0), uf.find(1));
    assert.equal(uf.find(3), 3);
    assert.equal(uf.union(5, 1), false);
  });
});

describe('hashing and memory estimate', () => {
  it('hash53 is a safe integer and differs for different strings', () => {
    const a = hash53('hello');
    assert.ok(Number.isSafeInteger(a) && a >= 0);
    assert.notEqual(a, hash53('hellp'));
    assert.equal(a, hash53('hello'));
  });

  it('estimates LSH memory from the table layout', () => {
    // 1,000,000 rows: table capacity = 2^21 slots (first power of two >= 2,000,000) x 12 B x 14 bands
    // = 352,321,536 B; union-find 2^20 rows (first power of two >= 1,000,000) x 4 B; + 16 (keep policy) + 56 (id)
    // B per row = 72,000,000 B.
    const e = estimateLshMemory(1_000_000);
    assert.equal(e.breakdown.band_tables, 2 ** 21 * 12 * 14);
    assert.equal(e.bytes, 2 ** 21 * 12 * 14 + 2 ** 20 * 4 + 72_000_000);
    // Signatures are allocated for 1,024 rows at first, then doubled.
    const v = estimateLshMemory(1000, { bands: 14, num_perm: 112, verify: true });
    assert.equal(v.breakdown.signatures, 1024 * 112 * 4);
    // Small inputs: the initial 2,048-slot tables dominate, and the estimate still bounds the real index.
    assert.equal(estimateLshMemory(10).breakdown.band_tables, 2048 * 12 * 14);
    assert.match(e.text, /MiB for 1,000,000 rows/);
  });
});
