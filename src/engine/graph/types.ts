/** Vocabulary of the engine: element types, dims, host tensors and node attributes. */

/** `float64` is engine-internal (finite-difference tests); models use float32/float16. */
export type DType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';

/** A static size, or a symbolic one named by a string ('batch', 'seq', 'past', or a derived '3*seq'). */
export type Dim = number | string;

/** Plain data crossing the JS <-> ORT boundary. float16 travels as raw bits in a Uint16Array, bool as Uint8Array. */
export interface HostTensor {
  dtype: DType;
  dims: number[];
  data: Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;
}

export type AttrValue =
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'ints'; v: number[] }
  | { kind: 'floats'; v: number[] }
  | { kind: 'string'; v: string }
  | { kind: 'tensor'; v: HostTensor };

export const isFloat = (d: DType): boolean => d === 'float32' || d === 'float16' || d === 'float64';

/** ONNX TensorProto.DataType numbers. */
export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

/** Build a HostTensor from numbers (convenience for constants and tests). */
export function hostTensor(dtype: DType, dims: number[], values: ArrayLike<number> | ArrayLike<bigint>): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new RangeError(`hostTensor: ${values.length} values for dims [${dims}]`);
  const nums = values as ArrayLike<number>;
  switch (dtype) {
    case 'float32':
      return { dtype, dims, data: Float32Array.from(nums) };
    case 'float64':
      return { dtype, dims, data: Float64Array.from(nums) };
    case 'float16':
      return { dtype, dims, data: Uint16Array.from(Array.from(nums, toHalf)) };
    case 'int32':
      return { dtype, dims, data: Int32Array.from(nums) };
    case 'int64':
      return {
        dtype,
        dims,
        data: BigInt64Array.from(Array.from(values as ArrayLike<number | bigint>, (v) => BigInt(v))),
      };
    case 'bool':
    case 'uint8':
      return { dtype, dims, data: Uint8Array.from(Array.from(values as ArrayLike<number | bigint>, (v) => Number(v))) };
  }
}

/** Values of a HostTensor as plain numbers (float16 decoded). */
export function toNumbers(t: HostTensor): number[] {
  if (t.dtype === 'float16') return Array.from(t.data as Uint16Array, fromHalf);
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> IEEE half bits, round to nearest even. */
export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  if (h >= 0x7c00) {
    e = 0x1f;
    return sign | 0x7c00;
  }
  return sign | h;
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
