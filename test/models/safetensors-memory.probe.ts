// Run in a child process by safetensors-memory.test.ts so that its peak RSS is this work's alone.
// Writes argv[3] tensors of argv[4] float32 values each (lazily, one in memory at a time), reads them back one by
// one, and prints the peak RSS with a checksum.
import { SafetensorsReader, writeSafetensors } from '../../src/models/safetensors.ts';

const [path, count, size] = [process.argv[2] as string, Number(process.argv[3]), Number(process.argv[4])];
writeSafetensors(
  path,
  Array.from({ length: count }, (_, i): [string, { dtype: 'F32'; shape: number[]; load: () => Float32Array }] => [
    `t${i}`,
    { dtype: 'F32', shape: [size], load: () => new Float32Array(size).fill(i) },
  ]),
);
const r = SafetensorsReader.open(path);
let sum = 0;
for (const name of r.names()) {
  const t = r.readFloat32(name);
  sum += (t.data[0] as number) + (t.data[size - 1] as number);
}
r.close();
process.stdout.write(`${JSON.stringify({ sum, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
