/**
 * Peak resident memory of this process, in MB, from VmHWM (the high-water mark of its own address space).
 * process.resourceUsage().maxRSS is not usable in a benchmark child: Linux carries the parent's high-water mark
 * across fork + exec, so a child spawned by a parent holding a model reported the parent's peak as its own.
 */
import { readFileSync } from 'node:fs';

export function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Math.round(Number(m[1]) / 1024);
  } catch {
    // not Linux: fall back to ru_maxrss below
  }
  return Math.round(process.resourceUsage().maxRSS / 1024);
}
