import { basename, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import type { ChatResult, GenerationSettings, Message } from '../core/types.ts';
import { openLocalModel } from './local-model.ts';

interface ChatOptions {
  system?: string;
  maxNewTokens: string;
  temperature?: string;
  topP?: string;
  topK?: string;
  minP?: string;
  repetitionPenalty?: string;
  seed?: string;
  template?: string;
  threads?: string;
  onnxFile?: string;
}

/** A numeric CLI option: undefined when absent, else a finite number that passes `check` (CONFIG_INVALID otherwise). */
export function num(v: string | undefined, field: string, check: (n: number) => boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || !check(n)) {
    throw new LoomError('CONFIG_INVALID', `--${field} has an invalid value '${v}'`, { field });
  }
  return n;
}

/** `loom chat <model-dir>`: interactive chat with the model's chat template and streamed replies. */
export function registerChat(program: Command): void {
  program
    .command('chat <model-dir>')
    .description('chat with a local model in the terminal (its chat template, streamed output; /exit to quit)')
    .option('--system <text>', 'system message')
    .option('--max-new-tokens <n>', 'longest reply in tokens', '256')
    .option('--temperature <t>', 'sampling temperature (0 = greedy; default from generation_config.json)')
    .option('--top-p <p>', 'nucleus sampling: keep the most probable tokens up to mass p')
    .option('--top-k <k>', 'keep only the k most probable tokens')
    .option('--min-p <p>', 'drop tokens less probable than p x the most probable one')
    .option('--repetition-penalty <r>', 'penalise tokens already in the conversation (1 = off)')
    .option('--seed <n>', 'sampling seed (same seed, same replies)')
    .option(
      '--template <name>',
      "chat template: auto (the model's own, else one its vocabulary suits), chatml, llama3, llama2, mistral",
    )
    .option('--threads <n>', 'ONNX Runtime threads')
    .option('--onnx-file <file>', "ONNX export only: the onnx/ file to run (default: the export's own dtype)")
    .addHelpText(
      'after',
      '\n<model-dir> may also be a `loom export --format onnx` folder (its onnx/ file runs as it is) or a .gguf file (run by llama.cpp through node-llama-cpp, with the chat template in the file).\n\nCommands inside the chat: /exit (or Ctrl-D) quits, /reset clears the conversation.\n\nExample:\n  $ loom chat models/tiny --system "You are a helpful assistant." --temperature 0.7 --seed 1\n  $ loom chat models/tiny/export/onnx-int8 --onnx-file model.onnx\n  $ loom chat models/tiny/export/gguf-int8/tiny-Q8_0.gguf',
    )
    .action(async (dir: string, opts: ChatOptions) => {
      const settings: GenerationSettings = {
        maxNewTokens: num(opts.maxNewTokens, 'max-new-tokens', (n) => Number.isInteger(n) && n > 0),
        temperature: num(opts.temperature, 'temperature', (n) => n >= 0),
        topP: num(opts.topP, 'top-p', (n) => n > 0 && n <= 1),
        topK: num(opts.topK, 'top-k', (n) => Number.isInteger(n) && n >= 0),
        minP: num(opts.minP, 'min-p', (n) => n >= 0 && n <= 1),
        repetitionPenalty: num(opts.repetitionPenalty, 'repetition-penalty', (n) => n > 0),
        seed: num(opts.seed, 'seed', Number.isInteger),
      };
      const threads = num(opts.threads, 'threads', (n) => Number.isInteger(n) && n > 0);
      await runChat(dir, opts, settings, threads);
    });
}

/** What the chat loop needs from a model: a streamed reply and a close. */
interface ChatSession {
  chatStream(
    messages: Message[],
    settings: GenerationSettings,
    onText: (d: string) => void,
    signal: AbortSignal,
  ): Promise<ChatResult>;
  close(): Promise<void>;
}

/** A model folder or ONNX export through Loom's engine; a .gguf file through llama.cpp (serve's gguf backend). */
async function openChat(dir: string, opts: ChatOptions, threads?: number): Promise<ChatSession> {
  if (!dir.toLowerCase().endsWith('.gguf')) {
    return openLocalModel(dir, { template: opts.template, threads, file: opts.onnxFile });
  }
  if (opts.template) {
    throw new LoomError('CONFIG_INVALID', '--template does not apply to a GGUF file', {
      field: 'template',
      hint: 'a GGUF file carries its own chat template (tokenizer.chat_template), which llama.cpp uses / GGUF 文件自带聊天模板',
    });
  }
  const [{ GgufBackend }, { Limiter }] = await Promise.all([
    import('../serve/gguf-backend.ts'),
    import('../serve/limiter.ts'),
  ]);
  const name =
    basename(dir)
      .replace(/\.gguf$/i, '')
      .replace(/[^A-Za-z0-9_.-]/g, '_') || 'gguf';
  const backend = await GgufBackend.open(
    { name, backend: 'gguf', path: resolve(dir), threads, concurrency: 1 },
    process.cwd(),
    new Limiter(1, 0),
  );
  return {
    chatStream: (messages, settings, onText, signal) =>
      backend.generate({ messages, settings: { maxNewTokens: 256, ...settings }, onText, signal }),
    close: () => backend.close(),
  };
}

async function runChat(dir: string, opts: ChatOptions, settings: GenerationSettings, threads?: number): Promise<void> {
  const model = await openChat(dir, opts, threads);
  const tty = process.stdin.isTTY === true;
  const out = process.stdout;
  const history: Message[] = opts.system ? [{ role: 'system', content: opts.system }] : [];
  const rl = createInterface({ input: process.stdin, output: tty ? out : undefined, terminal: tty });
  let current: AbortController | undefined;
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else rl.close();
  });
  if (tty) {
    out.write(`loom chat — ${dir} (/exit to quit, /reset to start over)\n`);
    rl.setPrompt('> ');
    rl.prompt();
  }
  try {
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === '/exit' || line === '/quit') break;
      if (line === '/reset') {
        history.splice(opts.system ? 1 : 0);
        out.write('(conversation cleared)\n');
      } else if (line) {
        history.push({ role: 'user', content: line });
        current = new AbortController();
        const r = await model.chatStream(history, settings, (d) => out.write(d), current.signal);
        current = undefined;
        out.write('\n');
        if (r.finishReason === 'length') out.write(`(stopped at --max-new-tokens ${settings.maxNewTokens})\n`);
        history.push({ role: 'assistant', content: r.text });
      }
      if (tty) rl.prompt();
    }
  } finally {
    rl.close();
    await model.close();
  }
}
