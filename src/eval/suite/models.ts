import { resolve } from 'node:path';
import type { ModelSpec } from '../../config/eval.ts';
import { LoomError } from '../../core/errors.ts';
import type { ChatModel } from '../../core/types.ts';
import { LocalChatModel } from '../../generate/chat-model.ts';
import { OpenAICompatibleModel } from '../../providers/openai-compatible.ts';

/** Builds the ChatModel a suite names: an OpenAI-compatible endpoint, or a local model folder on the engine. */
export async function openModel(spec: ModelSpec, baseDir: string): Promise<ChatModel> {
  if (spec.kind === 'endpoint') {
    return new OpenAICompatibleModel({
      provider: spec.provider,
      baseURL: spec.base_url,
      model: spec.model,
      apiKeyEnv: spec.api_key_env,
      concurrency: spec.concurrency,
      maxRetries: spec.max_retries,
      timeoutMs: spec.timeout_ms,
    });
  }
  const path = resolve(baseDir, spec.path);
  if (spec.adapter) {
    throw new LoomError('NOT_IMPLEMENTED', `model "${spec.id}": adapters are not loadable yet`, {
      field: 'models.adapter',
    });
  }
  return LocalChatModel.fromFolder(path, { id: `local:${spec.id}` });
}
