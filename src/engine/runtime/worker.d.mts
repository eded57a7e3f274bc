import type { HostTensor } from '../graph/types.ts';

export interface BackendOptions {
  threads: number;
  device?: 'cpu' | 'cuda';
  deviceId?: number;
  spinning?: boolean;
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  optimizedModelFilePath?: string;
  logLevel?: number;
  profilePrefix?: string;
  memArena?: boolean;
}
export function ortBinDir(): string;
export function cudaAvailable(): boolean;
export function load(
  model: Uint8Array | string,
  opts: BackendOptions,
): Promise<{ id: number; inputNames: string[]; outputNames: string[] }>;
export function run(
  id: number,
  feeds: Record<string, HostTensor>,
  fetches?: string[],
): Promise<Record<string, HostTensor>>;
export function release(id: number): Promise<void>;
export function endProfiling(id: number): Promise<string>;
export function releaseAll(): Promise<void>;
