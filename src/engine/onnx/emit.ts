/**
 * Graph -> ONNX ModelProto (onnx-proto / protobufjs). Frozen weights and constants become initializers,
 * trainable weights become graph inputs (with their value as an overridable default unless disabled), and large
 * tensors can go to an external data file so models over 2 GB load.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import onnxPkg from 'onnx-proto';
import { LoomError } from '../../core/errors.ts';
import { loomVersion } from '../../core/version.ts';
import type { Graph, Node, Tensor } from '../graph/graph.ts';
import { type AttrValue, type Dim, type HostTensor, ONNX_DTYPE } from '../graph/types.ts';
import { fusedNodes } from './fuse.ts';
import { type QuantizeOptions, quantizeMatMuls } from './quantize.ts';
import { foldWeightTransposes } from './weight-transpose.ts';

const { onnx } = onnxPkg;

export interface OnnxOptions {
  /** ai.onnx opset; default 18 (ReduceSum/Mean/Max all take axes as an input). 17 is also accepted. */
  opset?: number;
  /** Swap composites for fused ONNX/contrib ops where numerically equivalent (inference graphs). */
  fused?: boolean;
  /**
   * Write tensors of at least `threshold` bytes (default 1024) to `dir/file`; the model then refers to them by
   * that relative file name, so save the model itself in `dir` too and load it by path.
   */
  externalData?: ExternalDataOptions;
  /**
   * Also store trainable weights' values as initializers (ONNX "overridable defaults"). Default false: the
   * onnxruntime-node binding hides such inputs from inputNames and ignores feeds for them, so a training graph
   * must take them as plain inputs (their initial values stay in graph.trainables()).
   */
  trainableDefaults?: boolean;
  /**
   * Lossy, opt-in: replace MatMuls against frozen 2-D weights with com.microsoft.MatMulNBits (4- or 8-bit blocks).
   * For inference graphs (decode is memory-bound, so 4-bit weights read ~7x fewer bytes).
   */
  quantize?: QuantizeOptions;
  /**
   * Read transposed frozen weights in place (FusedMatMul transB) instead of letting ORT fold a transposed copy of
   * each; default true. See weight-transpose.ts.
   */
  foldWeightTransposes?: boolean;
  docString?: string;
}

export interface ExternalDataOptions {
  dir: string;
  file: string;
  threshold?: number;
  /**
   * 'size' (default): every tensor of at least `threshold` bytes goes external. 'weights': every graph weight goes
   * external whatever its size and nothing else does (constants stay inline), so the model file depends only on the
   * graph's structure, the weights' shapes and the constants: a cache key (generate/session-cache.ts).
   */
  select?: 'size' | 'weights';
  /**
   * false: plan the external file (offsets, lengths, `layout`) without writing it or reading any tensor's bytes;
   * the caller writes the data itself (e.g. streamed from safetensors). Default true.
   */
  write?: boolean;
  /** Filled with where each external tensor goes, in file order. */
  layout?: ExternalEntry[];
}

/** One tensor in an external data file. */
export interface ExternalEntry {
  name: string;
  offset: number;
  length: number;
}

/** Node shape used for emission (graph nodes, or fused replacements). */
export interface EmitNode {
  op: string;
  domain: string;
  inputs: readonly (Tensor | null)[];
  /** null = an optional output left unnamed. */
  outputs: readonly (Tensor | null)[];
  attrs: Readonly<Record<string, AttrValue>>;
}

const MAX_PROTO = 2 ** 31 - 2 ** 26;
const ALIGN = 65536;
const enc = new TextEncoder();

function attrProto(name: string, a: AttrValue): onnxPkg.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.v };
    case 'float':
      return { name, type: T.FLOAT, f: a.v };
    case 'ints':
      return { name, type: T.INTS, ints: a.v };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.v };
    case 'string':
      return { name, type: T.STRING, s: enc.encode(a.v) };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto('', a.v) };
  }
}

function rawBytes(h: HostTensor): Uint8Array {
  return new Uint8Array(h.data.buffer, h.data.byteOffset, h.data.byteLength);
}

function tensorProto(name: string, h: HostTensor): onnxPkg.onnx.ITensorProto {
  return { name, dims: h.dims, dataType: ONNX_DTYPE[h.dtype], rawData: rawBytes(h) };
}

const SYM_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function valueInfo(name: string, t: Tensor): onnxPkg.onnx.IValueInfoProto {
  const dim = (d: Dim): onnxPkg.onnx.TensorShapeProto.IDimension =>
    typeof d === 'number' ? { dimValue: d } : SYM_RE.test(d) ? { dimParam: d } : {};
  return {
    name,
    type: { tensorType: { elemType: ONNX_DTYPE[t.dtype], shape: { dim: t.shape.map(dim) } } },
  };
}

/** The nodes needed to compute the graph's outputs, in topological order. */
function liveNodes(graph: Graph, nodes: EmitNode[]): EmitNode[] {
  const producer = new Map<number, EmitNode>();
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o.id, n);
  const live = new Set<EmitNode>();
  const stack = graph.outputs.map((o) => o.tensor);
  const seen = new Set<number>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    const p = producer.get(t.id);
    if (!p || live.has(p)) continue;
    live.add(p);
    for (const i of p.inputs) if (i) stack.push(i);
  }
  return nodes.filter((n) => live.has(n));
}

export function toOnnx(graph: Graph, opts: OnnxOptions = {}): Uint8Array {
  const opset = opts.opset ?? 18;
  if (opset < 17) throw new LoomError('GRAPH', `toOnnx: opset ${opset} is not supported (use 17 or later)`);
  if (graph.outputs.length === 0) throw new LoomError('GRAPH', 'toOnnx: the graph has no outputs');
  let all: EmitNode[] = graph.nodes.map((n: Node) => n as EmitNode);
  const extraInits = new Map<Tensor, HostTensor>();
  const merge = (r: { nodes: EmitNode[]; inits: Map<Tensor, HostTensor> }) => {
    all = r.nodes;
    for (const [t, h] of r.inits) extraInits.set(t, h);
  };
  if (opts.fused) merge(fusedNodes(graph));
  if (opts.quantize) merge(quantizeMatMuls(graph, all, opts.quantize));
  if (opts.foldWeightTransposes !== false) all = foldWeightTransposes(graph, all);
  const nodes = liveNodes(graph, all);

  const names = new Map<number, string>();
  for (const i of graph.inputs) names.set(i.tensor.id, i.name);
  for (const w of graph.weights) names.set(w.tensor.id, w.name);
  const used = new Set<number>();
  for (const n of nodes) for (const i of n.inputs) if (i) used.add(i.id);
  for (const o of graph.outputs) used.add(o.tensor.id);

  // Outputs take over the name of the value that computes them when they can; otherwise an Identity is added.
  const extra: onnxPkg.onnx.INodeProto[] = [];
  const producedBy = new Set<number>();
  for (const n of nodes) for (const o of n.outputs) if (o) producedBy.add(o.id);
  for (const o of graph.outputs) {
    if (producedBy.has(o.tensor.id) && !names.has(o.tensor.id)) names.set(o.tensor.id, o.name);
  }
  const nameOf = (t: Tensor): string => {
    let s = names.get(t.id);
    if (!s) {
      s = t.id < 0 ? `x${-t.id}` : graph.constants.has(t.id) ? `c${t.id}` : `t${t.id}`;
      names.set(t.id, s);
    }
    return s;
  };
  for (const o of graph.outputs) {
    const src = nameOf(o.tensor);
    if (src !== o.name) extra.push({ opType: 'Identity', input: [src], output: [o.name], name: `out_${o.name}` });
  }

  let extFd: number | undefined;
  let extOffset = 0;
  const ext = opts.externalData;
  const threshold = ext?.threshold ?? 1024;
  if (ext && ext.write !== false) {
    mkdirSync(ext.dir, { recursive: true });
    extFd = openSync(join(ext.dir, ext.file), 'w');
  }
  let inlineBytes = 0;
  const initializer = (name: string, h: HostTensor, isWeight = false): onnxPkg.onnx.ITensorProto => {
    const bytes = rawBytes(h);
    const external = ext && (ext.select === 'weights' ? isWeight : bytes.byteLength >= threshold);
    if (external) {
      // Page-aligned (64 KiB for large tensors) so ORT can map each tensor from the file instead of reading it.
      const align = bytes.byteLength >= 1 << 20 ? ALIGN : 4096;
      const start = Math.ceil(extOffset / align) * align;
      let pos = 0;
      if (extFd !== undefined) {
        while (pos < bytes.byteLength) pos += writeSync(extFd, bytes, pos, bytes.byteLength - pos, start + pos);
      }
      extOffset = start + bytes.byteLength;
      ext.layout?.push({ name, offset: start, length: bytes.byteLength });
      return {
        name,
        dims: h.dims,
        dataType: ONNX_DTYPE[h.dtype],
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: ext.file },
          { key: 'offset', value: String(start) },
          { key: 'length', value: String(bytes.byteLength) },
        ],
      };
    }
    inlineBytes += bytes.byteLength;
    return tensorProto(name, h);
  };

  try {
    const inits: onnxPkg.onnx.ITensorProto[] = [];
    const inputs: onnxPkg.onnx.IValueInfoProto[] = graph.inputs.map((i) => valueInfo(i.name, i.tensor));
    for (const w of graph.weights) {
      if (w.trainable) {
        inputs.push(valueInfo(w.name, w.tensor));
        if (opts.trainableDefaults === true) inits.push(initializer(w.name, w.value, true));
      } else if (used.has(w.tensor.id)) inits.push(initializer(w.name, w.value, true));
    }
    for (const [id, h] of graph.constants) if (used.has(id)) inits.push(initializer(nameOf(graph.tensors[id]!), h));
    for (const [t, h] of extraInits) if (used.has(t.id)) inits.push(initializer(nameOf(t), h));

    const domains = new Set<string>();
    const nodeProtos: onnxPkg.onnx.INodeProto[] = nodes.map((n, k) => {
      if (n.domain) domains.add(n.domain);
      const attrs = Object.entries(n.attrs).filter(([key]) => !key.startsWith('_'));
      const attribute = attrs.map(([key, a]) => attrProto(key, a));
      let input = n.inputs.map((t) => (t ? nameOf(t) : ''));
      if (opset < 18 && (n.op === 'ReduceMean' || n.op === 'ReduceMax') && n.inputs[1]) {
        const axes = graph.constants.get(n.inputs[1].id);
        attribute.push({
          name: 'axes',
          type: onnx.AttributeProto.AttributeType.INTS,
          ints: Array.from(axes!.data as BigInt64Array, Number),
        });
        input = input.slice(0, 1);
      }
      return {
        opType: n.op,
        domain: n.domain || undefined,
        name: `n${k}_${n.op}`,
        input,
        output: n.outputs.map((t) => (t ? nameOf(t) : '')),
        attribute,
      };
    });
    if (inlineBytes > MAX_PROTO) {
      throw new LoomError(
        'GRAPH',
        `toOnnx: ${(inlineBytes / 2 ** 30).toFixed(2)} GB of inline tensors exceeds protobuf's 2 GB limit`,
        {
          hint: 'pass externalData: { dir, file } to write weights to a separate file',
        },
      );
    }
    const opsetImport: onnxPkg.onnx.IOperatorSetIdProto[] = [{ domain: '', version: opset }];
    for (const d of domains) opsetImport.push({ domain: d, version: 1 });
    const model: onnxPkg.onnx.IModelProto = {
      irVersion: opset <= 18 ? 8 : opset <= 20 ? 9 : opset <= 22 ? 10 : 11,
      producerName: 'loom',
      producerVersion: loomVersion(),
      opsetImport,
      docString: opts.docString,
      graph: {
        name: graph.name,
        node: [...nodeProtos, ...extra],
        initializer: inits,
        input: inputs,
        output: graph.outputs.map((o) => valueInfo(o.name, o.tensor)),
      },
    };
    return onnx.ModelProto.encode(model).finish();
  } finally {
    if (extFd !== undefined) closeSync(extFd);
  }
}
