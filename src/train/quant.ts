/**
 * 4-bit block quantisation in ONNX Runtime's MatMulNBits layout: for weight W [N, K] (HF [out, in]) and block size
 * bs, each row is cut into ceil(K/bs) blocks (the last one zero-padded); a block stores bs/2 bytes, two values per
 * byte (even index in the low nibble), value q in 0..15 with implicit zero point 8, and one float scale:
 * w ≈ (q - 8) * scale. A scale is the largest-magnitude value of its tile divided by -8 (so that value maps exactly
 * to q = 0), as ORT's symmetric quantiser does per block.
 */
export interface Quantized4 {
  /** [N, nBlocks * bs / 2] bytes (= [N, nBlocks, bs/2] blobs). */
  packed: Uint8Array;
  /** [N, nBlocks] scales. */
  scales: Float32Array;
  blocks: number;
}

/** Bytes of a quantised [N, K] weight: packed nibbles + fp32 scales. */
export function packedBytes(n: number, k: number, bs: number): number {
  const nb = Math.ceil(k / bs);
  return (n * nb * bs) / 2 + n * nb * 4;
}

/** Rows of W per scale tile: the transposed copy's MatMulNBits block size (along N). */
export const TILE_ROWS = 32;

/** What a QLoRA checkpoint's base was quantised with (state.json `quant`); resume refuses any other. */
export const QLORA_SCHEME = 'nbits4-tile32';

/**
 * Two MatMulNBits copies of one 4-bit matrix. W [N, K] is cut into tiles of TILE_ROWS rows × bs columns with one
 * scale each (signed absmax / -8); every element gets one nibble q. `fwd` holds W as [N, K] blocks along K (block
 * bs) for y = x·Wᵀ, `bwd` holds Wᵀ as [K, N] blocks along N (block TILE_ROWS) for dx = g·W. Each block lies inside
 * one tile, so both copies carry the same q and the same scale for every element: they dequantise to the same
 * matrix bit for bit, and the input gradient is the exact gradient of the forward.
 */
export interface TiledQuantized4 {
  fwd: Quantized4;
  bwd: Quantized4;
}

export function quantizeTiles4(w: Float32Array, n: number, k: number, bs: number): TiledQuantized4 {
  const tr = TILE_ROWS;
  const tilesN = Math.ceil(n / tr);
  const tilesK = Math.ceil(k / bs);
  const tile = new Float32Array(tilesN * tilesK);
  for (let r = 0; r < n; r++) {
    const ti = Math.floor(r / tr);
    for (let c = 0; c < k; c++) {
      const t = ti * tilesK + Math.floor(c / bs);
      const x = w[r * k + c]!;
      if (Math.abs(x) > Math.abs(tile[t]!)) tile[t] = x;
    }
  }
  for (let t = 0; t < tile.length; t++) tile[t] = Math.fround(tile[t]! / -8);
  const fRow = (tilesK * bs) / 2;
  const bRow = (tilesN * tr) / 2;
  const fwd: Quantized4 = {
    packed: new Uint8Array(n * fRow).fill(0x88),
    scales: new Float32Array(n * tilesK),
    blocks: tilesK,
  };
  const bwd: Quantized4 = {
    packed: new Uint8Array(k * bRow).fill(0x88),
    scales: new Float32Array(k * tilesN),
    blocks: tilesN,
  };
  for (let r = 0; r < n; r++) {
    const ti = Math.floor(r / tr);
    for (let c = 0; c < k; c++) {
      const tj = Math.floor(c / bs);
      const scale = tile[ti * tilesK + tj]!;
      const inv = scale === 0 ? 0 : 1 / scale;
      const q = Math.min(15, Math.max(0, Math.round(w[r * k + c]! * inv) + 8));
      setNibble(fwd.packed, r * fRow, c, q);
      setNibble(bwd.packed, c * bRow, r, q);
    }
  }
  for (let r = 0; r < n; r++)
    for (let j = 0; j < tilesK; j++) fwd.scales[r * tilesK + j] = tile[Math.floor(r / tr) * tilesK + j]!;
  for (let c = 0; c < k; c++)
    for (let i = 0; i < tilesN; i++) bwd.scales[c * tilesN + i] = tile[i * tilesK + Math.floor(c / bs)]!;
  return { fwd, bwd };
}

/** Writes nibble q at column `col` of the row starting at byte `row` (buffer pre-filled with zero point 8). */
function setNibble(buf: Uint8Array, row: number, col: number, q: number): void {
  const i = row + (col >> 1);
  buf[i] = col & 1 ? (buf[i]! & 0x0f) | (q << 4) : (buf[i]! & 0xf0) | q;
}

/** Bytes of both tiled copies of a quantised [N, K] weight (nibbles + fp32 scales). */
export function tiledBytes(n: number, k: number, bs: number): number {
  return packedBytes(n, k, bs) + packedBytes(k, n, TILE_ROWS);
}
