import type { HostTensor } from '../graph/types.ts';

export interface BackendOptions {
  threads: number;
  device?: 'cpu' | 'cuda';
  deviceId?: number;
  spinning?: boolean;
  spinDurationUs?: number;
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  optimizedModelFilePath?: string;
  logLevel?: number;
  profilePrefix?: string;
  memArena?: boolean;
  prepack?: boolean;
  memPattern?: boolean;
}
export function ortBinDir(): string;
export function cudaAvailable(): boolean;
export function load(
  model: Uint8Array | string,
  opts: BackendOptions,
): Promise<{ id: number; inputNames: string[]; outputNames: string[] }>;
/** A value an earlier run kept in the backend's thread (RunOptions.keep); only its handle crosses. */
export interface ResidentTensor {
  resident: number;
  dtype: HostTensor['dtype'];
  dims: number[];
}
export function run(
  id: number,
  feeds: Record<string, HostTensor | ResidentTensor>,
  fetches?: string[],
  keep?: string[],
): Promise<Record<string, HostTensor | ResidentTensor>>;
export function free(handles: number[]): void;
export function compose(jobs: number[][], picks: [number, number][], length: number): ResidentTensor[];
export function residentCount(): number;
export function release(id: number): Promise<void>;
export function endProfiling(id: number): Promise<string>;
export function releaseAll(): Promise<void>;
