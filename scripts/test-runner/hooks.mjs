// Module resolve hook for unit shards: a test file's `import … from 'node:test'` gets node-test-shim.mjs, which
// scopes the file's top-level hooks to that file. Everything else (the shim's own import included) resolves as usual.
const SHIM = new URL('./node-test-shim.mjs', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'node:test' && context.parentURL?.match(/\.test\.[cm]?[jt]s$/)) {
    return { url: SHIM, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
