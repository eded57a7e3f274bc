/** Perplexity of text[from..] given all-position logits [T, V] of that text (next-token log-softmax, stable). */
export function textPerplexity(logits: Float32Array, text: readonly number[], from: number, V: number): number {
  let nll = 0;
  for (let t = from; t < text.length; t++) {
    const o = (t - 1) * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[o + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v]! - max);
    nll -= logits[o + text[t]!]! - max - Math.log(sum);
  }
  return Math.exp(nll / (text.length - from));
}
