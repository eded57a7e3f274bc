/** The engine: graph IR, autodiff, ONNX emission and the ORT runtime. See docs/engine.md. */
export { differentiableOps, grad, unbroadcast } from './autodiff/grad.ts';
export type { ChunkedCrossEntropyOptions } from './graph/chunked-ce.ts';
export { chunkedCrossEntropy } from './graph/chunked-ce.ts';
export type { AttentionOptions, CrossEntropyOptions } from './graph/composites.ts';
export {
  attention,
  crossEntropy,
  embedding,
  gelu,
  layerNorm,
  linear,
  rmsNorm,
  rope,
  silu,
} from './graph/composites.ts';
export type { CompositeRegion, CompositeVjp, Node, WeightEntry } from './graph/graph.ts';
export { Graph, Tensor } from './graph/graph.ts';
export type { TensorLike } from './graph/ops.ts';
export {
  abs,
  add,
  arange,
  argMax,
  broadcastShapes,
  cast,
  concat,
  cos,
  dimScalar,
  div,
  equal,
  erf,
  exp,
  expand,
  full,
  gather,
  gatherElements,
  greater,
  greaterEqual,
  i64,
  less,
  lessEqual,
  log,
  logicalAnd,
  logicalNot,
  logicalOr,
  logSoftmax,
  matmul,
  maximum,
  minimum,
  mul,
  neg,
  pad,
  pow,
  range,
  reduceMax,
  reduceMean,
  reduceSum,
  relu,
  reshape,
  scatterElements,
  scatterND,
  shapeOf,
  shapeTensor,
  sigmoid,
  sign,
  sin,
  slice,
  softmax,
  sqrt,
  squeeze,
  stopGradient,
  sub,
  tanh,
  transpose,
  unsqueeze,
  where,
  zerosLike,
} from './graph/ops.ts';
export type { AttrValue, Dim, DType, HostTensor } from './graph/types.ts';
export { fromHalf, hostTensor, isFloat, toHalf, toNumbers } from './graph/types.ts';
export type { ExternalDataOptions, ExternalEntry, OnnxOptions } from './onnx/emit.ts';
export { toOnnx } from './onnx/emit.ts';
export type { QuantizedWeight, QuantizeOptions } from './onnx/quantize.ts';
export { quantizeBlocks } from './onnx/quantize.ts';
export type { LoadOptions, ResidentTensor, RunOptions, RuntimeOptions, Session } from './runtime/engine.ts';
export { Engine, isResident } from './runtime/engine.ts';
