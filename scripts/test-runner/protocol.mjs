// The line prefix a unit shard puts before each JSON event it sends to scripts/run-tests.mjs on stdout; test
// output shares the stream, so the runner finds events by this mark and keeps every other line as test output.
export const MARK = '@@loom-test ';
