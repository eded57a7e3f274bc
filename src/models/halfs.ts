/**
 * float16 / bfloat16 <-> float32 conversion on bit patterns (Uint16Array holds the 16-bit words).
 * float32 -> 16-bit rounds to nearest, ties to even, as PyTorch's `.half()` / `.bfloat16()` do.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let f16Table: Float32Array | undefined;

function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** One 16-bit float16 word to a number. */
export function f16ToNumber(h: number): number {
  return f16Bits()[h & 0xffff] as number;
}

function f16Bits(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToNumber(i);
  }
  return f16Table;
}

export function f16ToF32(src: Uint16Array): Float32Array {
  const t = f16Bits();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i] as number] as number;
  return out;
}

export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = (src[i] as number) << 16;
  return out;
}

/** One number to float16 bits, round to nearest even; overflow goes to infinity. */
export function numberToF16(x: number): number {
  f32[0] = x;
  const b = u32[0] as number;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full mantissa (with its hidden bit) into place, rounding to even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  const rest = mant & 0x1fff;
  let h = (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent: that is correct rounding
  if (h >= 0x7c00) e = 0x1f;
  return sign | (e === 0x1f ? 0x7c00 : h);
}

export function f32ToF16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = numberToF16(src[i] as number);
  return out;
}

export function numberToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0] as number;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToBf16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  if (!(src instanceof Float32Array)) {
    for (let i = 0; i < src.length; i++) out[i] = numberToBf16(src[i] as number);
    return out;
  }
  // Same rounding as numberToBf16, on the bit patterns directly (no per-element round trip through a number).
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i] as number;
    out[i] =
      (b & 0x7f800000) === 0x7f800000 && b & 0x7fffff
        ? ((b >>> 16) | 0x40) & 0xffff
        : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}
