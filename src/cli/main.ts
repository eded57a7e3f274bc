import { Command } from 'commander';
import { isLoomError } from '../core/errors.ts';
import { loomVersion } from '../core/version.ts';
import { registerForArgv } from './commands.ts';

const program = new Command();
program
  .name('loom')
  .description('Loom: raw business text → clean data → fine-tuned, evaluated model')
  .version(loomVersion())
  .showHelpAfterError()
  .addHelpText(
    'after',
    `
Lifecycle: data → model → train → eval (each verb has --help with an example).

Example:
  $ npx loom quickstart            # the customer-service example through every stage
  $ npx loom data run examples/customer-service/data.yaml`,
  );

// Only the verb being run is loaded (see commands.ts): start-up stays well under a second.
await registerForArgv(program, process.argv);

// `loom … | head` closes the pipe early: that is the reader's choice, not a crash.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (isLoomError(e)) {
    process.stderr.write(`${e.format()}\n`);
    process.exit(2);
  }
  throw e;
}
