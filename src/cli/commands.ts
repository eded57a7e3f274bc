import type { Command } from 'commander';
import { registerQuickstart } from './quickstart.ts';

/** Every verb registers itself here; one file per verb keeps the shell thin. */
export function registerCommands(program: Command): void {
  registerQuickstart(program);
}
