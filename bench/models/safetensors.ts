/**
 * safetensors streaming: write a ~1 GB BF16 checkpoint tensor by tensor, then read every tensor back as float32
 * one at a time; report throughput and peak RSS above the starting RSS (the point: a 1 GB file does not need
 * 3 GB of heap). Usage: node --expose-gc --import tsx bench/models/safetensors.ts [sizeMiB=1024]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LazyTensorData, SafetensorsReader, writeSafetensors } from '../../src/models/safetensors.ts';

const sizeMiB = Number(process.argv[2] ?? 1024);
const tensorMiB = 32; // stored BF16 bytes per tensor
const count = Math.max(1, Math.round(sizeMiB / tensorMiB));
const elems = (tensorMiB * 1024 * 1024) / 2;
const dir = mkdtempSync(join(tmpdir(), 'loom-bench-st-'));
const path = join(dir, 'model.safetensors');

let peak = 0;
const base = process.memoryUsage().rss;
const sample = (): void => {
  peak = Math.max(peak, process.memoryUsage().rss - base);
};
const timer = setInterval(sample, 5);

// Lazy tensors: each is made when the writer reaches it, so only one float32 tensor is alive at a time.
const tensors: [string, LazyTensorData][] = Array.from({ length: count }, (_, i) => [
  `model.layers.${i}.mlp.up_proj.weight`,
  {
    dtype: 'F32',
    shape: [elems / 1024, 1024],
    load: () => {
      sample();
      const data = new Float32Array(elems);
      for (let j = 0; j < elems; j += 1024) data[j] = (i + j) * 1e-6;
      return data;
    },
  },
]);

let t0 = performance.now();
writeSafetensors(path, tensors, { dtype: 'BF16' });
const writeS = (performance.now() - t0) / 1000;
const bytes = statSync(path).size;
const writePeak = peak;
// Measure the read phase from where the process stands now.
(globalThis as { gc?: () => void }).gc?.();
const readBase = process.memoryUsage().rss;
peak = 0;
const sampleRead = (): void => {
  peak = Math.max(peak, process.memoryUsage().rss - readBase);
};

t0 = performance.now();
const r = SafetensorsReader.open(path);
let checksum = 0;
for (const name of r.names()) {
  const t = r.readFloat32(name);
  checksum += t.data[1024] as number;
  sampleRead();
}
r.close();
const readS = (performance.now() - t0) / 1000;
clearInterval(timer);
rmSync(dir, { recursive: true });

console.log(
  JSON.stringify({
    bench: 'safetensors',
    file_mib: Math.round(bytes / 2 ** 20),
    tensors: count,
    write_s: Number(writeS.toFixed(2)),
    write_mib_s: Math.round(bytes / 2 ** 20 / writeS),
    write_peak_rss_mib: Math.round(writePeak / 2 ** 20),
    read_bf16_to_f32_s: Number(readS.toFixed(2)),
    read_mib_s: Math.round(bytes / 2 ** 20 / readS),
    read_peak_rss_mib: Math.round(peak / 2 ** 20),
    checksum: Number(checksum.toFixed(3)),
  }),
);
