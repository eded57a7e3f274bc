import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { DEFAULT_INCLUDE, pullModel } from '../models/pull.ts';

export function registerPull(program: Command): void {
  program
    .command('pull <repo>')
    .description('download a model folder from the Hugging Face hub (resumable, checksummed)')
    .option('-r, --revision <rev>', 'branch, tag or commit', 'main')
    .option('-o, --out <dir>', 'destination folder (default models/<owner>--<name>)')
    .option('--endpoint <url>', 'hub endpoint (default $HF_ENDPOINT or https://huggingface.co)')
    .option('--token <token>', 'access token for gated/private repos (default $HF_TOKEN)')
    .option('--include <globs...>', `files to fetch (default: ${DEFAULT_INCLUDE.join(' ')})`)
    .option('--retries <n>', 'retries per file after a network error', '3')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  $ loom pull HuggingFaceTB/SmolLM2-135M-Instruct --out models/smollm2\n  $ HF_ENDPOINT=https://hf-mirror.example loom pull Qwen/Qwen2.5-0.5B-Instruct',
    )
    .action(
      async (
        repo: string,
        opts: {
          revision: string;
          out?: string;
          endpoint?: string;
          token?: string;
          include?: string[];
          retries: string;
          json?: boolean;
        },
      ) => {
        const retries = Number(opts.retries);
        if (!Number.isInteger(retries) || retries < 0) {
          throw new LoomError('CONFIG_INVALID', `--retries must be a whole number >= 0, not '${opts.retries}'`, {
            field: 'retries',
          });
        }
        const r = await pullModel({
          repo,
          revision: opts.revision,
          out: opts.out,
          endpoint: opts.endpoint,
          token: opts.token,
          include: opts.include,
          retries,
        });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(r)}\n`);
          return;
        }
        const got = r.files.filter((f) => !f.skipped).length;
        process.stdout.write(
          `${repo} -> ${r.dir}${r.commit ? ` (commit ${r.commit.slice(0, 12)})` : ''}: ${got} downloaded, ${r.files.length - got} already present\n`,
        );
      },
    );
}
