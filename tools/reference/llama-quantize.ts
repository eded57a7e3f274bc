/**
 * llama.cpp's own quantiser on a GGUF file, for comparing Loom's quantisations with it: runs
 * tools/reference/llama_quantize.py (python3 + ctypes) on the libllama that node-llama-cpp ships (linux-x64 CPU build).
 * Returns the output path, or a reason why it cannot run here (no python3, no prebuilt libllama).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export function libllamaPath(): string | null {
  // the platform package has no resolvable entry point: find it beside node-llama-cpp in node_modules
  const bins = join(here, '..', '..', 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64');
  if (!existsSync(bins)) return null;
  const lib = readdirSync(bins).find((f) => /^libllama(\.v[\d.]+)?\.so$/.test(f));
  return lib ? join(bins, lib) : null;
}

export function llamaCppQuantize(
  src: string,
  dst: string,
  type: 'Q8_0' | 'Q4_0' | 'Q4_K_M' | 'F16',
  threads = 2,
): { ok: true; path: string } | { ok: false; reason: string } {
  const lib = libllamaPath();
  if (!lib) return { ok: false, reason: 'no prebuilt libllama (@node-llama-cpp/linux-x64) here' };
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
  } catch {
    return { ok: false, reason: 'python3 is not available' };
  }
  execFileSync('python3', [join(here, 'llama_quantize.py'), lib, src, dst, type, String(threads)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (!existsSync(dst)) return { ok: false, reason: `llama_model_quantize wrote no ${dst}` };
  return { ok: true, path: dst };
}
