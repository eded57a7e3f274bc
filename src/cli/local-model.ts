import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openExportSource } from '../export/source.ts';
import { LocalChatModel, type LocalChatModelOptions } from '../generate/chat-model.ts';

/**
 * What `loom chat` and `loom generate` run: a model folder as it is, or a training run folder / checkpoint folder
 * resolved the way `loom export` reads them (merged/ or model/, a LoRA adapter merged into its base, a checkpoint
 * verified against its manifest and applied to the run's base model).
 */
export async function openLocalModel(dir: string, opts: LocalChatModelOptions = {}): Promise<LocalChatModel> {
  if (existsSync(join(dir, 'config.json'))) return LocalChatModel.fromFolder(dir, opts);
  const src = openExportSource(dir);
  return LocalChatModel.fromWeights(src, { id: `local:${dir}`, ...opts });
}
