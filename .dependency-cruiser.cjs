/**
 * Layer rules, written once: a module may import from its own layer and the layers below it, never above.
 * Same-layer stages (data, tokenizer, engine, …) may use one another. See docs/architecture.md "Layers".
 * bench/, test/ and tools/ sit above everything and may import any of src/.
 */
const LAYERS = [
  ['core'],
  ['config'],
  ['data', 'tokenizer', 'engine', 'providers', 'registry'],
  ['models'],
  ['generate', 'train'],
  ['eval'],
  ['export', 'guard'],
  ['serve', 'monitor'],
  ['pipeline'],
  ['studio'],
  ['cli'],
];

const dirs = (names) => `^src/(${names.join('|')})/`;

const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.join('-')}`,
  comment: `${layer.join(', ')} must not import from a higher layer (${LAYERS.slice(i + 1).flat().join(', ')})`,
  severity: 'error',
  from: { path: dirs(layer) },
  to: { path: dirs(LAYERS.slice(i + 1).flat()) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'import circles make load order and layering fragile (type-only imports are erased: not counted)',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'src-not-from-test-or-bench',
      comment: 'library code never imports tests, benchmarks or tools',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|tools)/' },
    },
    {
      name: 'bench-not-from-test',
      comment: 'benchmarks use library code, not test helpers',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/' },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6'],
  },
};
