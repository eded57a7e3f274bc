// node:test reporter for unit shards: turns the runner's events into one JSON line each (after MARK) for
// scripts/run-tests.mjs, which prints the per-file lines, the failures with their file names, and the totals.
// (shard.mjs itself writes load/begin/test events synchronously, for liveness and for blame if the shard dies.)
//   result {file, path, ok, skip, todo, error}   one finished test (suites are not counted)
//   file   {file, ok, ms}          a whole file finished
//   end                            every file finished (a shard that exits without it crashed)
import { inspect } from 'node:util';
import { MARK } from './protocol.mjs';

const line = (obj) => `${MARK}${JSON.stringify(obj)}\n`;

function describeError(error) {
  if (error === undefined || error === null) return undefined;
  // node:test wraps what the test threw in ERR_TEST_FAILURE; the cause carries the stack and assertion diff.
  const cause = error.cause ?? error;
  const kind = error.failureType && error.failureType !== 'testCodeFailure' ? `[${error.failureType}] ` : '';
  return kind + (cause instanceof Error ? inspect(cause, { depth: 4 }) : String(cause));
}

export default async function* shardReporter(source) {
  const stack = [];
  for await (const event of source) {
    const d = event.data;
    switch (event.type) {
      case 'test:start':
        stack[d.nesting] = d.name;
        stack.length = d.nesting + 1;
        break;
      case 'test:pass':
      case 'test:fail': {
        const ok = event.type === 'test:pass';
        if (d.nesting === 0) {
          yield line({ ev: 'file', file: d.name, ok, ms: d.details.duration_ms, error: ok ? undefined : describeError(d.details.error) });
        } else if (d.details.type !== 'suite') {
          yield line({
            ev: 'result',
            file: stack[0],
            path: [...stack.slice(1, d.nesting), d.name],
            ok,
            skip: d.skip !== undefined && d.skip !== false,
            todo: d.todo !== undefined && d.todo !== false,
            error: ok ? undefined : describeError(d.details.error),
          });
        } else if (!ok) {
          // A failing suite (its before/after hook threw, or it timed out) is reported even though it is not a test.
          yield line({ ev: 'suite-fail', file: stack[0], path: [...stack.slice(1, d.nesting), d.name], error: describeError(d.details.error) });
        }
        break;
      }
      case 'test:plan':
        if (d.nesting === 0) yield line({ ev: 'end' });
        break;
      default:
        break;
    }
  }
}
