import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import { Registry } from '../registry/db.ts';
import { ApiKeys } from '../registry/keys.ts';

function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new LoomError('CONFIG_INVALID', `${flag} has an invalid value '${v}'`, {
      field: flag,
      hint: 'a whole number >= 1',
    });
  return n;
}

function withKeys<T>(registry: string | undefined, f: (k: ApiKeys) => T): T {
  const r = new Registry(registry);
  try {
    return f(new ApiKeys(r));
  } finally {
    r.close();
  }
}

/** `loom keys create|list|revoke`: API keys for `loom serve`, hashed at rest in the registry. */
export function registerKeys(program: Command): void {
  const cmd = program
    .command('keys')
    .description('API keys for loom serve (hashed at rest in the registry; the key is shown once)')
    .option('--registry <file>', 'registry database (default .loom/registry.db or $LOOM_REGISTRY)');
  cmd.addHelpText(
    'after',
    '\nExample:\n  $ loom keys create --name support-bot --models support --rpm 60 --token-budget 1000000\n  $ loom keys list\n  $ loom keys revoke key_1a2b3c4d5e6f',
  );
  cmd
    .command('create')
    .description('create a key and print it once')
    .requiredOption('--name <name>', 'who the key is for')
    .option('--models <list>', 'comma-separated model names it may use (default: all)')
    .option('--rpm <n>', 'requests per minute')
    .option('--token-budget <n>', 'total prompt+completion tokens it may use')
    .addHelpText('after', '\nExample:\n  $ loom keys create --name support-bot --models support,support:faq --rpm 60')
    .action((o: { name: string; models?: string; rpm?: string; tokenBudget?: string }) => {
      const models = o.models
        ? o.models
            .split(',')
            .map((m) => m.trim())
            .filter(Boolean)
        : [];
      const { key, record } = withKeys(cmd.opts<{ registry?: string }>().registry, (k) =>
        k.create({
          name: o.name,
          models,
          rpm: positiveInt(o.rpm, '--rpm'),
          tokenBudget: positiveInt(o.tokenBudget, '--token-budget'),
        }),
      );
      process.stdout.write(`${key}\n`);
      process.stderr.write(
        `created ${record.id} (${record.name}); store the key now, it is not shown again / 请立即保存密钥，之后不再显示\n`,
      );
    });
  cmd
    .command('list')
    .description('list keys (never the keys themselves)')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExample:\n  $ loom keys list --json')
    .action((o: { json?: boolean }) => {
      const rows = withKeys(cmd.opts<{ registry?: string }>().registry, (k) => k.list());
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      for (const r of rows) {
        const limits = [
          r.rpm ? `${r.rpm} rpm` : '',
          r.tokenBudget ? `${r.tokensUsed}/${r.tokenBudget} tokens` : `${r.tokensUsed} tokens`,
        ]
          .filter(Boolean)
          .join(', ');
        process.stdout.write(
          `${r.id}\t${r.name}\t${r.models.join(',') || '*'}\t${limits}\t${r.revokedAt ? `revoked ${r.revokedAt}` : 'active'}\n`,
        );
      }
    });
  cmd
    .command('revoke <id>')
    .description('revoke a key (a running server refuses it from the next request)')
    .addHelpText('after', '\nExample:\n  $ loom keys revoke key_1a2b3c4d5e6f')
    .action((id: string) => {
      if (!withKeys(cmd.opts<{ registry?: string }>().registry, (k) => k.revoke(id))) {
        throw new LoomError('INPUT_NOT_FOUND', `no active key ${id}`, { hint: 'see loom keys list' });
      }
      process.stdout.write(`revoked ${id}\n`);
    });
}
