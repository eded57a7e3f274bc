/**
 * The ggml block formats a GGUF Q4_K_M file mixes (ggml-common.h layouts, ggml-quants.c reference quantisers,
 * rewritten here; no importance matrix, as `llama-quantize` without --imatrix):
 *
 *   Q4_K  256 values: f16 d, f16 dmin, u8 scales[12] (8 sub-blocks of 32: 6-bit scale + 6-bit min, packed as
 *         get_scale_min_k4 reads them), u8 qs[128] (64-value groups, low nibble = value l, high nibble = l + 32);
 *         x ≈ d·sc·q − dmin·m, q ∈ 0..15. Per sub-block the (scale, min) pair is searched as make_qkx2_quants does
 *         (weights av|x| + |x|, 21 candidate scales, least squares with min clamped to ≤ 0).  144 B = 4.5 bit/value
 *   Q6_K  256 values: u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits), i8 scales[16] (sub-blocks of 16), f16 d;
 *         x ≈ d·sc·(q − 32), q ∈ 0..63; per sub-block scale from make_qx_quants (x²-weighted search of 19 scales).
 *                                                                                         210 B = 6.5625 bit/value
 *   Q5_0  32 values: f16 d, u32 qh (5th bits), u8 qs[16] (value j low nibble, j + 16 high nibble); d = m / −16 with
 *         m the value of largest magnitude; x ≈ d·(q − 16).                                 22 B = 5.5 bit/value
 *
 * API: quantizeQ4K / quantizeQ6K / quantizeQ5_0 (Float32Array -> bytes), dequantizeQ4K / dequantizeQ6K /
 * dequantizeQ5_0 (bytes, n -> Float32Array), Q4_K_BYTES, Q6_K_BYTES, Q5_0_BYTES, QK_K.
 */
import { f16ToF32, numberToF16 } from '../../models/halfs.ts';

export const QK_K = 256;
export const Q4_K_BYTES = 144;
export const Q6_K_BYTES = 210;
export const Q5_0_BYTES = 22;

const f = Math.fround;
const half = new Uint16Array(1);
/** A float32 value rounded through f16 and back, as GGML_FP32_TO_FP16 then GGML_FP16_TO_FP32 give it. */
function viaHalf(x: number): number {
  half[0] = numberToF16(x);
  return f16ToF32(half)[0]!;
}

/** ggml's nearest_int: round half to even in float32 (the 1.5·2^23 trick). */
function nearestInt(x: number): number {
  return f(f(x) + 12582912) - 12582912;
}

/** make_qkx2_quants: best (scale, min) of x ≈ scale·L + min, L ∈ 0..nmax, min ≤ 0; returns [scale, −min]. */
function qkx2(x: Float32Array, off: number, n: number, nmax: number, w: Float32Array, L: Uint8Array, lo: number) {
  let min = x[off]!;
  let max = x[off]!;
  let sumW = w[0]!;
  let sumX = sumW * x[off]!;
  for (let i = 1; i < n; i++) {
    const v = x[off + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW += w[i]!;
    sumX += w[i]! * v;
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min] as const;
  }
  let iscale = nmax / (max - min);
  let scale = 1 / iscale;
  let best = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[off + i]! - min))));
    L[lo + i] = l;
    const d = scale * l + min - x[off + i]!;
    best += w[i]! * d * d;
  }
  const aux = new Uint8Array(n);
  // rmin −1, rdelta 0.1, 20 steps: Q4_K's search in quantize_row_q4_K_ref
  for (let is = 0; is <= 20; is++) {
    iscale = (-1 + 0.1 * is + nmax) / (max - min);
    let sl = 0;
    let sl2 = 0;
    let sxl = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[off + i]! - min))));
      aux[i] = l;
      sl += w[i]! * l;
      sl2 += w[i]! * l * l;
      sxl += w[i]! * l * x[off + i]!;
    }
    const D = sumW * sl2 - sl * sl;
    if (D > 0) {
      let s = (sumW * sxl - sumX * sl) / D;
      let m = (sl2 * sumX - sl * sxl) / D;
      if (m > 0) {
        m = 0;
        s = sxl / sl2;
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        const d = s * aux[i]! + m - x[off + i]!;
        err += w[i]! * d * d;
      }
      if (err < best) {
        L.set(aux, lo);
        best = err;
        scale = s;
        min = m;
      }
    }
  }
  return [scale, -min] as const;
}

export function quantizeQ4K(x: Float32Array): Uint8Array {
  const nb = x.length / QK_K;
  const out = new Uint8Array(nb * Q4_K_BYTES);
  const dv = new DataView(out.buffer);
  const L = new Uint8Array(QK_K);
  const w = new Float32Array(32);
  const scales = new Float64Array(8);
  const mins = new Float64Array(8);
  for (let i = 0; i < nb; i++) {
    const base = i * QK_K;
    const o = i * Q4_K_BYTES;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sx2 = 0;
      for (let l = 0; l < 32; l++) sx2 += x[base + 32 * j + l]! ** 2;
      const av = Math.sqrt(sx2 / 32);
      for (let l = 0; l < 32; l++) w[l] = av + Math.abs(x[base + 32 * j + l]!);
      const [s, m] = qkx2(x, base + 32 * j, 32, 15, w, L, 32 * j);
      scales[j] = s;
      mins[j] = m;
      maxScale = Math.max(maxScale, s);
      maxMin = Math.max(maxMin, m);
    }
    const invS = maxScale > 0 ? 63 / maxScale : 0;
    const invM = maxMin > 0 ? 63 / maxMin : 0;
    const sc = o + 4;
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(invS * scales[j]!));
      const lm = Math.min(63, nearestInt(invM * mins[j]!));
      if (j < 4) {
        out[sc + j] = ls;
        out[sc + j + 4] = lm;
      } else {
        out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        out[sc + j - 4]! |= (ls >> 4) << 6;
        out[sc + j]! |= (lm >> 4) << 6;
      }
    }
    dv.setUint16(o, numberToF16(maxScale / 63), true);
    dv.setUint16(o + 2, numberToF16(maxMin / 63), true);
    const d = viaHalf(maxScale / 63);
    const dmin = viaHalf(maxMin / 63);
    for (let j = 0; j < 8; j++) {
      const [s, m] = scaleMin(out, sc, j);
      const dd = d * s;
      if (!dd) continue;
      const dm = dmin * m;
      for (let ii = 0; ii < 32; ii++) {
        L[32 * j + ii] = Math.max(0, Math.min(15, nearestInt((x[base + 32 * j + ii]! + dm) / dd)));
      }
    }
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) out[o + 16 + j / 2 + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  }
  return out;
}

/** get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 packed bytes at `at`. */
function scaleMin(q: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [q[at + j]! & 63, q[at + j + 4]! & 63];
  return [(q[at + j + 4]! & 0xf) | ((q[at + j - 4]! >> 6) << 4), (q[at + j + 4]! >> 4) | ((q[at + j]! >> 6) << 4)];
}

export function dequantizeQ4K(b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < n / QK_K; i++) {
    const o = i * Q4_K_BYTES;
    const d = f16(dv.getUint16(o, true));
    const dmin = f16(dv.getUint16(o + 2, true));
    for (let j = 0; j < QK_K; j += 64) {
      const [s1, m1] = scaleMin(b, o + 4, j / 32);
      const [s2, m2] = scaleMin(b, o + 4, j / 32 + 1);
      for (let l = 0; l < 32; l++) {
        const q = b[o + 16 + j / 2 + l]!;
        out[i * QK_K + j + l] = d * s1 * (q & 0xf) - dmin * m1;
        out[i * QK_K + j + 32 + l] = d * s2 * (q >> 4) - dmin * m2;
      }
    }
  }
  return out;
}

function f16(h: number): number {
  half[0] = h;
  return f16ToF32(half)[0]!;
}

/** make_qx_quants with rmse_type 1 (weights x²): signed scale, L = q + nmax ∈ 0..2·nmax−1. */
function qx(x: Float32Array, off: number, n: number, nmax: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[off + i]!);
    if (a > amax) {
      amax = a;
      max = x[off + i]!;
    }
  }
  if (amax < 1e-15) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const fit = (iscale: number, write: boolean): [number, number] => {
    let slx = 0;
    let sl2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[off + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
      if (write) L[lo + i] = l + nmax;
      slx += v * v * v * l;
      sl2 += v * v * l * l;
    }
    return [slx, sl2];
  };
  let [sumlx, suml2] = fit(-nmax / max, true);
  let scale = suml2 ? sumlx / suml2 : 0;
  let best = scale * sumlx;
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = -(nmax + 0.1 * is) / max;
    [sumlx, suml2] = fit(iscale, false);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      fit(iscale, true);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

export function quantizeQ6K(x: Float32Array): Uint8Array {
  const nb = x.length / QK_K;
  const out = new Uint8Array(nb * Q6_K_BYTES);
  const dv = new DataView(out.buffer);
  const L = new Int8Array(QK_K);
  const scales = new Float64Array(16);
  for (let i = 0; i < nb; i++) {
    const base = i * QK_K;
    const o = i * Q6_K_BYTES;
    let maxScale = 0;
    let maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = qx(x, base + 16 * ib, 16, 32, L, 16 * ib);
      scales[ib] = s;
      if (Math.abs(s) > maxAbs) {
        maxAbs = Math.abs(s);
        maxScale = s;
      }
    }
    if (maxAbs < 1e-15) continue; // an all-zero block: every byte 0 (d = 0)
    const iscale = -128 / maxScale;
    dv.setUint16(o + 208, numberToF16(1 / iscale), true);
    const d = viaHalf(1 / iscale);
    for (let ib = 0; ib < 16; ib++) dv.setInt8(o + 192 + ib, Math.min(127, nearestInt(iscale * scales[ib]!)));
    for (let j = 0; j < 16; j++) {
      const dd = d * dv.getInt8(o + 192 + j);
      if (!dd) continue;
      for (let ii = 0; ii < 16; ii++) {
        L[16 * j + ii] = Math.max(-32, Math.min(31, nearestInt(x[base + 16 * j + ii]! / dd))) + 32;
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      const ql = o + j / 2;
      const qh = o + 128 + j / 4;
      for (let l = 0; l < 32; l++) {
        const [a, b, c, e] = [L[j + l]!, L[j + l + 32]!, L[j + l + 64]!, L[j + l + 96]!];
        out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
        out[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
        out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
  }
  return out;
}

export function dequantizeQ6K(b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < n / QK_K; i++) {
    const o = i * Q6_K_BYTES;
    const d = f16(dv.getUint16(o + 208, true));
    for (let j = 0; j < QK_K; j += 128) {
      const ql = o + j / 2;
      const qh = o + 128 + j / 4;
      const sc = o + 192 + j / 16;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l]!;
        const q1 = ((b[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        const y = i * QK_K + j + l;
        out[y] = d * dv.getInt8(sc + is) * q1;
        out[y + 32] = d * dv.getInt8(sc + is + 2) * q2;
        out[y + 64] = d * dv.getInt8(sc + is + 4) * q3;
        out[y + 96] = d * dv.getInt8(sc + is + 6) * q4;
      }
    }
  }
  return out;
}

export function quantizeQ5_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * Q5_0_BYTES);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const o = b * Q5_0_BYTES;
    let amax = 0;
    let m = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b * 32 + j]!;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        m = v;
      }
    }
    const d = m / -16;
    const id = d ? 1 / d : 0;
    dv.setUint16(o, numberToF16(d), true);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // Math.fround: ggml computes x * id in float32 before the truncation
      const q0 = Math.min(31, Math.trunc(f(x[b * 32 + j]! * id) + 16.5));
      const q1 = Math.min(31, Math.trunc(f(x[b * 32 + j + 16]! * id) + 16.5));
      out[o + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 >> 4) & 1) << j;
      qh |= ((q1 >> 4) & 1) << (j + 16);
    }
    dv.setUint32(o + 2, qh >>> 0, true);
  }
  return out;
}

export function dequantizeQ5_0(b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < n / 32; i++) {
    const o = i * Q5_0_BYTES;
    const d = f16(dv.getUint16(o, true));
    const qh = dv.getUint32(o + 2, true);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 6 + j]!;
      out[i * 32 + j] = d * (((q & 0xf) | (((qh >>> j) & 1) << 4)) - 16);
      out[i * 32 + j + 16] = d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
    }
  }
  return out;
}
