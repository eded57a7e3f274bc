import type { Command } from 'commander';
import { registerAdapter } from './adapter.ts';
import { registerChat } from './chat.ts';
import { registerData } from './data.ts';
import { registerEval } from './eval.ts';
import { registerEvalSuite } from './eval-suite.ts';
import { registerExport } from './export.ts';
import { registerGuard } from './guard.ts';
import { registerKeys } from './keys.ts';
import { registerModel } from './model.ts';
import { registerModelScore } from './model-score.ts';
import { registerPull } from './pull.ts';
import { registerQuickstart } from './quickstart.ts';
import { registerRuns } from './runs.ts';
import { registerServe } from './serve.ts';
import { registerTrain } from './train.ts';

/** Every verb registers itself here; one file per verb keeps the shell thin. */
export function registerCommands(program: Command): void {
  registerData(program);
  registerQuickstart(program);
  registerEvalSuite(registerEval(program));
  registerModelScore(registerModel(program));
  registerChat(program);
  registerPull(program);
  registerTrain(program);
  registerAdapter(program);
  registerServe(program);
  registerKeys(program);
  registerRuns(program);
  registerExport(program);
  registerGuard(program);
}
