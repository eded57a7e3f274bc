/**
 * float16 / bfloat16 <-> float32 conversion on bit patterns (Uint16Array holds the 16-bit words).
 * float32 -> 16-bit rounds to nearest, ties to even, as PyTorch's `.half()` / `.bfloat16()` do.
 */
import { fromHalf, toHalf } from '../engine/index.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let f16Table: Float32Array | undefined;

/** Every float16 bit pattern decoded once (engine's fromHalf), so converting a tensor is one lookup a value. */
function f16Bits(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = fromHalf(i);
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

/** One number to float16 bits, round to nearest even; overflow goes to infinity (the engine's conversion). */
export const numberToF16: (x: number) => number = toHalf;

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
