/**
 * The customer-service chats as pretraining text, as the quickstart makes them: `train.jsonl` and
 * `validation.jsonl` of a `loom data run` output folder → `train-text.jsonl` / `validation-text.jsonl`
 * (`{"text": "Customer: …\nAgent: …"}`, 顾客/客服 for Chinese chats). The test split is left alone.
 *   npx tsx examples/customer-service/tools/chats-to-text.ts out/customer-service/data
 */
import { join } from 'node:path';
import { chatsToTextFile } from '../../../src/train/quickstart.ts';

const dir = process.argv[2] ?? 'out/customer-service/data';
for (const split of ['train', 'validation']) {
  const out = join(dir, `${split}-text.jsonl`);
  const n = chatsToTextFile(join(dir, `${split}.jsonl`), out);
  process.stdout.write(`${out}: ${n} documents\n`);
}
