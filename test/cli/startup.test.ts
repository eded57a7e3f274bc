import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerCommands, registerForArgv, VERBS } from '../../src/cli/commands.ts';

function program(): Command {
  return new Command().name('loom').description('d').exitOverride();
}

test('the top-level help from the lazy verb table is byte-identical to the fully registered one', async () => {
  const full = program();
  await registerCommands(full);
  const lazy = program();
  await registerForArgv(lazy, ['node', 'loom', '--help']);
  assert.equal(lazy.helpInformation(), full.helpInformation());
  // Every real verb is in the table (a verb added to a register file but not to VERBS would be unreachable).
  assert.deepEqual(
    full.commands.map((c) => c.name()),
    VERBS.map((v) => v.name),
  );
});

test('a named verb loads only its own command, fully (subcommands and options included)', async () => {
  const p = program();
  await registerForArgv(p, ['node', 'loom', 'help', 'data']);
  assert.deepEqual(
    p.commands.map((c) => c.name()),
    ['data'],
  );
  assert.ok(p.commands[0]!.commands.some((c) => c.name() === 'run'));

  const m = program();
  await registerForArgv(m, ['node', 'loom', 'eval', 'metric', 'bleu', '--hyp', 'h', '--ref', 'r']);
  const ev = m.commands.find((c) => c.name() === 'eval');
  assert.deepEqual(
    ev?.commands.map((c) => c.name()),
    ['metric'],
  );

  const all = program();
  await registerForArgv(all, ['node', 'loom', 'eval', '--help']);
  const names = all.commands[0]!.commands.map((c) => c.name());
  assert.ok(names.includes('metric') && names.includes('run') && names.includes('compare'), names.join(','));
});
