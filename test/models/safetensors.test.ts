import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, numberToBf16, numberToF16 } from '../../src/models/halfs.ts';
import { SafetensorsReader, writeSafetensors, writeSharded } from '../../src/models/safetensors.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'loom-st-'));

/** A file built byte by byte from the format description, independent of our writer. */
function handBuilt(path: string): void {
  // a: F32 [2] = [1.5, -2]      bytes 0..8
  // b: F16 [3] = [1, -2, 65504]  bytes 8..14   (0x3C00, 0xC000, 0x7BFF)
  // c: BF16 [1,2] = [1, pi~]     bytes 14..18  (0x3F80, 0x4049 = 3.140625)
  // d: I64 [1] = 7               bytes 18..26
  const header =
    '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},"c":{"dtype":"BF16","shape":[1,2],"data_offsets":[14,18]},' +
    '"d":{"dtype":"I64","shape":[1],"data_offsets":[18,26]}}';
  const h = Buffer.from(header, 'utf8');
  const data = Buffer.from([
    0x00,
    0x00,
    0xc0,
    0x3f,
    0x00,
    0x00,
    0x00,
    0xc0, // 1.5, -2 (f32 LE)
    0x00,
    0x3c,
    0x00,
    0xc0,
    0xff,
    0x7b, // f16 LE
    0x80,
    0x3f,
    0x49,
    0x40, // bf16 LE
    0x07,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // i64 LE
  ]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, h, data]));
}

test('reads a hand-built file and converts F16/BF16 to float32', () => {
  const d = tmp();
  const p = join(d, 'x.safetensors');
  handBuilt(p);
  const r = SafetensorsReader.open(p);
  assert.deepEqual(r.names().sort(), ['a', 'b', 'c', 'd']);
  assert.deepEqual(r.metadata, { format: 'pt' });
  assert.deepEqual([...r.readFloat32('a').data], [1.5, -2]);
  assert.deepEqual([...r.readFloat32('b').data], [1, -2, 65504]);
  const c = r.readFloat32('c');
  assert.deepEqual(c.dims, [1, 2]);
  assert.deepEqual([...c.data], [1, 3.140625]);
  const di = r.readRaw('d');
  assert.equal(di.dtype, 'I64');
  assert.equal(new BigInt64Array(di.data.buffer, di.data.byteOffset, 1)[0], 7n);
  assert.throws(
    () => r.readFloat32('d'),
    (e: unknown) => e instanceof LoomError && e.code === 'MODEL_INVALID',
  );
  r.close();
  rmSync(d, { recursive: true });
});

test('our writer produces the spec layout: u64 header size, JSON, 8-aligned data start, contiguous offsets', () => {
  const d = tmp();
  const p = join(d, 'w.safetensors');
  writeSafetensors(p, [
    ['w', { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }],
    ['v', { dtype: 'F32', shape: [3], data: Float32Array.of(-1, 0.5, 8) }],
  ]);
  const buf = readFileSync(p);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  assert.deepEqual(header.w, { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] });
  assert.deepEqual(header.v, { dtype: 'F32', shape: [3], data_offsets: [16, 28] });
  assert.equal(buf.length, 8 + n + 28);
  assert.equal(buf.readFloatLE(8 + n + 16), -1);
  rmSync(d, { recursive: true });
});

test('round trip F32 / F16 / BF16 and sharding with an index', () => {
  const d = tmp();
  const vals = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
  const tensors: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [];
  for (let i = 0; i < 5; i++) tensors.push([`t${i}`, { dtype: 'F32', shape: [10, 100], data: vals }]);
  const files = writeSharded(d, tensors, { maxShardBytes: 9000 });
  assert.deepEqual(files, [
    'model-00001-of-00003.safetensors',
    'model-00002-of-00003.safetensors',
    'model-00003-of-00003.safetensors',
    'model.safetensors.index.json',
  ]);
  const index = JSON.parse(readFileSync(join(d, 'model.safetensors.index.json'), 'utf8'));
  assert.equal(index.metadata.total_size, 5 * 4000);
  assert.equal(index.weight_map.t4, 'model-00003-of-00003.safetensors');
  const r = SafetensorsReader.open(d);
  assert.equal(r.names().length, 5);
  assert.deepEqual(r.readFloat32('t3').data, vals);
  r.close();

  for (const dtype of ['F16', 'BF16'] as const) {
    const p = join(d, `${dtype}.safetensors`);
    writeSafetensors(p, { x: { shape: [1000], data: vals } }, { dtype });
    const rr = SafetensorsReader.open(p);
    assert.equal(rr.info('x').dtype, dtype);
    const back = rr.readFloat32('x').data;
    const expect = dtype === 'F16' ? f16ToF32(f32ToF16(vals)) : bf16ToF32(f32ToBf16(vals));
    assert.deepEqual(back, expect);
    const rel = dtype === 'F16' ? 2 ** -11 : 2 ** -8;
    vals.forEach((v, i) => {
      assert.ok(Math.abs((back[i] as number) - v) <= Math.abs(v) * rel + 1e-7);
    });
    rr.close();
  }
  rmSync(d, { recursive: true });
});

test('float16 bit patterns (IEEE 754 binary16)', () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14],
    [0x3555, 0.333251953125],
    [0x7c00, Number.POSITIVE_INFINITY],
    [0xfc00, Number.NEGATIVE_INFINITY],
    [0x8000, -0],
  ];
  for (const [bits, v] of cases) {
    assert.equal(f16ToF32(Uint16Array.of(bits))[0], v, bits.toString(16));
    assert.equal(numberToF16(v), bits, String(v));
  }
  assert.ok(Number.isNaN(f16ToF32(Uint16Array.of(0x7e00))[0] as number));
  assert.equal(numberToF16(Number.NaN) & 0x7c00, 0x7c00);
  // Round to nearest even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> 1 (even mantissa).
  assert.equal(numberToF16(1 + 2 ** -11), 0x3c00);
  assert.equal(numberToF16(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(numberToF16(65519), 0x7bff);
  assert.equal(numberToF16(65520), 0x7c00); // halfway to the next (nonexistent) value rounds to infinity
  assert.equal(numberToF16(2 ** -25), 0x0000); // tie with zero -> even (0)
  assert.equal(numberToF16(3 * 2 ** -25), 0x0002); // tie between 1 and 2 subnormal units -> 2
  assert.equal(numberToF16(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the smallest normal
});

test('float32 <-> float16 / bfloat16 agree bit for bit with PyTorch (fixtures/halfs, torch 1.13)', () => {
  const ref = JSON.parse(readFileSync(new URL('../fixtures/halfs/halfs.json', import.meta.url), 'utf8')) as Record<
    string,
    number[]
  >;
  const f32 = new Float32Array(Uint32Array.from(ref.f32_bits as number[]).buffer);
  assert.deepEqual([...f32ToF16(f32)], ref.f16_bits);
  assert.deepEqual([...f32ToBf16(f32)], ref.bf16_bits);
  const pats = Uint16Array.from(ref.patterns as number[]);
  const bits = (a: Float32Array): number[] => [...new Uint32Array(a.buffer)];
  // NaN payloads may differ; compare NaN-ness there and bits elsewhere.
  const same = (got: number[], want: number[]): void => {
    got.forEach((g, i) => {
      const w = want[i] as number;
      const nan = (b: number): boolean => (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;
      assert.ok(nan(w) ? nan(g) : g === w, `pattern ${pats[i]}: ${g.toString(16)} vs ${w.toString(16)}`);
    });
  };
  same(bits(f16ToF32(pats)), ref.f16_to_f32_bits as number[]);
  same(bits(bf16ToF32(pats)), ref.bf16_to_f32_bits as number[]);
});

test('bfloat16 bit patterns (top 16 bits of float32, round to nearest even)', () => {
  assert.equal(numberToBf16(1), 0x3f80);
  assert.equal(numberToBf16(-2), 0xc000);
  assert.equal(numberToBf16(Math.PI), 0x4049);
  assert.equal(bf16ToF32(Uint16Array.of(0x4049))[0], 3.140625);
  // 1 + 2^-8 is halfway between bf16 1 (0x3F80) and 1 + 2^-7 (0x3F81): ties to even -> 0x3F80
  assert.equal(numberToBf16(1 + 2 ** -8), 0x3f80);
  assert.equal(numberToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(numberToBf16(Number.POSITIVE_INFINITY), 0x7f80);
  assert.ok(Number.isNaN(bf16ToF32(Uint16Array.of(numberToBf16(Number.NaN)))[0] as number));
});

test('truncated file: MODEL_INVALID naming the file and the tensor', () => {
  const d = tmp();
  const p = join(d, 'model.safetensors');
  writeSafetensors(p, {
    first: { shape: [4], data: new Float32Array(4) },
    second: { shape: [4], data: new Float32Array(4) },
  });
  const size = readFileSync(p).length;
  truncateSync(p, size - 3);
  assert.throws(
    () => SafetensorsReader.open(p),
    (e: unknown) =>
      e instanceof LoomError &&
      e.code === 'MODEL_INVALID' &&
      e.file === p &&
      e.field === 'second' &&
      /truncated/.test(e.message),
  );
  truncateSync(p, 5);
  assert.throws(
    () => SafetensorsReader.open(p),
    (e: unknown) => e instanceof LoomError && e.code === 'MODEL_INVALID',
  );
  rmSync(d, { recursive: true });
});

test('header whose offsets disagree with dtype x shape is rejected', () => {
  const d = tmp();
  const p = join(d, 'bad.safetensors');
  const h = Buffer.from('{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(p, Buffer.concat([len, h, Buffer.alloc(8)]));
  assert.throws(
    () => SafetensorsReader.open(p),
    (e: unknown) => e instanceof LoomError && e.field === 'x' && /needs 12/.test(e.message),
  );
  rmSync(d, { recursive: true });
});

test('missing shard named by the index', () => {
  const d = tmp();
  writeSharded(
    d,
    { a: { shape: [100], data: new Float32Array(100) }, b: { shape: [100], data: new Float32Array(100) } },
    { maxShardBytes: 400 },
  );
  rmSync(join(d, 'model-00002-of-00002.safetensors'));
  assert.throws(
    () => SafetensorsReader.open(d),
    (e: unknown) =>
      e instanceof LoomError &&
      e.code === 'MODEL_INVALID' &&
      /model-00002-of-00002/.test(String(e.file)) &&
      /missing/.test(e.message),
  );
  rmSync(d, { recursive: true });
});
