/**
 * 4-bit block quantisation in ONNX Runtime's MatMulNBits layout: for weight W [N, K] (HF [out, in]) and block size
 * bs, each row is cut into ceil(K/bs) blocks (the last one zero-padded); a block stores bs/2 bytes, two values per
 * byte (even index in the low nibble), value q in 0..15 with implicit zero point 8, and one float scale:
 * w ≈ (q - 8) * scale. The scale is the block's largest-magnitude value divided by -8 (so that value maps exactly to
 * q = 0), as ORT's symmetric quantiser does.
 */
export interface Quantized4 {
  /** [N, nBlocks * bs / 2] bytes (= [N, nBlocks, bs/2] blobs). */
  packed: Uint8Array;
  /** [N, nBlocks] scales. */
  scales: Float32Array;
  blocks: number;
}

export function quantize4(w: Float32Array, n: number, k: number, bs: number): Quantized4 {
  const nb = Math.ceil(k / bs);
  const rowBytes = (nb * bs) / 2;
  const packed = new Uint8Array(n * rowBytes);
  const scales = new Float32Array(n * nb);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < nb; b++) {
      let vmax = 0;
      for (let i = 0; i < bs && b * bs + i < k; i++) {
        const x = w[r * k + b * bs + i]!;
        if (Math.abs(x) > Math.abs(vmax)) vmax = x;
      }
      const scale = Math.fround(vmax / -8);
      scales[r * nb + b] = scale;
      const inv = scale === 0 ? 0 : 1 / scale;
      for (let i = 0; i < bs; i++) {
        const col = b * bs + i;
        const q = col < k ? Math.min(15, Math.max(0, Math.round(w[r * k + col]! * inv) + 8)) : 8;
        const byte = r * rowBytes + (col >> 1);
        packed[byte] = col & 1 ? packed[byte]! | (q << 4) : packed[byte]! | q;
      }
    }
  }
  return { packed, scales, blocks: nb };
}

export function dequantize4(q: Quantized4, n: number, k: number, bs: number): Float32Array {
  const out = new Float32Array(n * k);
  const rowBytes = (q.blocks * bs) / 2;
  for (let r = 0; r < n; r++) {
    for (let col = 0; col < k; col++) {
      const byte = q.packed[r * rowBytes + (col >> 1)]!;
      const v = col & 1 ? byte >> 4 : byte & 15;
      out[r * k + col] = Math.fround((v - 8) * q.scales[r * q.blocks + Math.floor(col / bs)]!);
    }
  }
  return out;
}

/** Bytes of a quantised [N, K] weight: packed nibbles + fp32 scales. */
export function packedBytes(n: number, k: number, bs: number): number {
  const nb = Math.ceil(k / bs);
  return (n * nb * bs) / 2 + n * nb * 4;
}
