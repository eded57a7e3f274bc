/**
 * Cross-entropy of a linear head without the full [rows, vocab] logits: the rows are split into `chunks` pieces
 * (sized at run time, ceil(rows / chunks) each, so any batch shape works) and each piece's logits, log-softmax and
 * gradient exist only while that piece is processed. At 4×256 tokens the unchunked loss held four [1024, vocab]
 * fp32 buffers at once (0.8 GB for SmolLM2's 49,152 words, 2.5 GB for Qwen2.5's 151,936).
 *
 * Two gradient modes:
 * - eager (training step graphs): each piece's d(loss)/d(hidden) and, when asked, d(loss)/d(head) are computed
 *   right after its forward, with d(loss) = 1; the custom VJP only scales them by the incoming gradient. The next
 *   piece's hidden rows are read through Where(true, rows, dep) where dep reads the previous piece's results: a
 *   data dependency that makes ONNX Runtime finish one piece before it starts the next (its default order is a
 *   depth-first walk that could otherwise compute every piece's logits first).
 * - recompute (graphs built without eager gradients): the VJP recomputes each piece's logits in the backward pass.
 *
 * Numerics follow crossEntropy's custom VJP: d logits = (softmax − onehot) · w / Σw per row.
 */
import { LoomError } from '../../core/errors.ts';
import { crossEntropyLogitsGrad, labelWeights, pickedLogProb } from './composites.ts';
import type { Tensor } from './graph.ts';
import { add, div, i64, logSoftmax, matmul, maximum, mul, neg, reduceSum, transpose, where } from './ops.ts';
import { type Dim, hostTensor } from './types.ts';

export interface ChunkedCrossEntropyOptions {
  /** Pieces the rows are split into (>= 1). */
  chunks: number;
  ignoreIndex?: number;
  /** Per-row float weights [N]; the loss is Σ w·ce / Σ w over rows whose label is not ignoreIndex. */
  weights?: Tensor;
  /** Compute the gradient inside the forward pass, piece by piece (training step graphs). */
  eagerGrad?: boolean;
  /** With eagerGrad: also accumulate the head's gradient (the head is trained, e.g. full fine-tuning). */
  headGrad?: boolean;
}

/** Mean token cross-entropy of logits = h · head. h [N, H], head [H, V], labels [N]. Returns a scalar. */
export function chunkedCrossEntropy(h: Tensor, head: Tensor, labels: Tensor, opts: ChunkedCrossEntropyOptions): Tensor {
  if (h.rank !== 2 || head.rank !== 2 || labels.rank !== 1) {
    throw new LoomError(
      'GRAPH',
      `chunkedCrossEntropy: h must be [N,H], head [H,V] and labels [N]; got ${h}, ${head} and ${labels}`,
    );
  }
  const K = opts.chunks;
  if (!Number.isInteger(K) || K < 1) throw new LoomError('GRAPH', `chunkedCrossEntropy: chunks ${K} must be >= 1`);
  const g = h.graph;
  const ignore = opts.ignoreIndex ?? -100;
  const inputs = opts.weights ? [h, head, labels, opts.weights] : [h, head, labels];
  const [N, H] = h.shape as [Dim, Dim];
  // cached dim tensors belong to no region: create it before the region opens so the region stays contiguous
  const n = g.dimTensor(N);
  return g.composite('chunkedCrossEntropy', inputs, { ignore, chunks: K }, () => {
    const { safe, w } = labelWeights(labels, ignore, opts.weights, h.dtype);
    const den = maximum(reduceSum(w, [0], false), 1e-12);
    // piece i = rows [i·cs, (i+1)·cs), cs = ceil(N / K); Slice clamps the ends, trailing pieces may be empty
    const cs = g.addNode('Div', [add(n, i64(g, [K - 1])), i64(g, [K])], [{ dtype: 'int64', shape: [1] }])[0]!;
    const bounds = Array.from({ length: K + 1 }, (_, i) =>
      i === 0 ? i64(g, [0]) : g.addNode('Mul', [cs, i64(g, [i])], [{ dtype: 'int64', shape: [1] }])[0]!,
    );
    const rowsOf = (t: Tensor, i: number, dim: Dim): Tensor =>
      g.addNode(
        'Slice',
        [t, bounds[i]!, bounds[i + 1]!, i64(g, [0])],
        [{ dtype: t.dtype, shape: [dim, ...t.shape.slice(1)] }],
      )[0]!;
    const alwaysTrue = g.constant(hostTensor('bool', [], [1]));
    const corner = (t: Tensor): Tensor =>
      reduceSum(
        g.addNode(
          'Slice',
          [t, i64(g, [0, 0]), i64(g, [1, 1]), i64(g, [0, 1])],
          [{ dtype: t.dtype, shape: [1, 1] }],
        )[0]!,
        [0, 1],
        false,
      );
    const headT = transpose(head, [1, 0]);

    const pieces: { rows: Dim; hc: Tensor; safe: Tensor; w: Tensor }[] = [];
    const dhs: Tensor[] = [];
    let dHead: Tensor | undefined;
    let total: Tensor | undefined;
    let dep: Tensor | undefined;
    const gradOf = (lsm: Tensor, sc: Tensor, coef: Tensor, hc: Tensor, withHead: boolean) => {
      const dl = crossEntropyLogitsGrad(lsm, sc, coef);
      return { dh: matmul(dl, headT), dHead: withHead ? matmul(transpose(hc, [1, 0]), dl) : undefined };
    };
    for (let i = 0; i < K; i++) {
      const rows = K === 1 ? N : g.opaqueSymbol('chunk');
      const hRows = K === 1 ? h : rowsOf(h, i, rows);
      const sc = K === 1 ? safe : rowsOf(safe, i, rows);
      const wc = K === 1 ? w : rowsOf(w, i, rows);
      pieces.push({ rows, hc: hRows, safe: sc, w: wc });
      const hc = dep ? where(alwaysTrue, hRows, dep) : hRows;
      const lsm = logSoftmax(matmul(hc, head), -1);
      const part = reduceSum(neg(mul(pickedLogProb(lsm, sc), wc)), [0], false);
      total = total ? add(total, part) : part;
      if (opts.eagerGrad) {
        const r = gradOf(lsm, sc, div(wc, den), hc, opts.headGrad === true);
        dhs.push(r.dh);
        if (r.dHead) dHead = dHead ? add(dHead, r.dHead) : r.dHead;
        dep = add(corner(r.dh), part);
        if (dHead) dep = add(dep, corner(dHead));
      }
    }
    const output = div(total!, den);
    const concatRows = (parts: Tensor[]): Tensor =>
      parts.length === 1
        ? parts[0]!
        : g.addNode('Concat', parts, [{ dtype: h.dtype, shape: [N, H] }], { axis: { kind: 'int', v: 0 } })[0]!;
    const vjp = (gOut: Tensor, need: boolean[]): (Tensor | null)[] | undefined => {
      if (need[3]) return undefined; // gradient w.r.t. the row weights: not provided
      if (opts.eagerGrad && (!need[1] || dHead)) {
        return [need[0] ? mul(concatRows(dhs), gOut) : null, need[1] ? mul(dHead!, gOut) : null, null, null];
      }
      // recompute each piece in the backward pass; reading the rows through gOut keeps ORT from merging the
      // recomputation with the forward's (common-subexpression elimination) or running it early
      const parts: Tensor[] = [];
      let dHeadR: Tensor | undefined;
      for (const p of pieces) {
        const hc = where(alwaysTrue, p.hc, gOut);
        const lsm = logSoftmax(matmul(hc, head), -1);
        const r = gradOf(lsm, p.safe, div(mul(gOut, p.w), den), hc, need[1] === true);
        parts.push(r.dh);
        if (r.dHead) dHeadR = dHeadR ? add(dHeadR, r.dHead) : r.dHead;
      }
      return [need[0] ? concatRows(parts) : null, need[1] ? dHeadR! : null, null, null];
    };
    return { output, vjp };
  });
}
