/**
 * Loom's data stage as a library:
 *
 *   import { runDataPipeline, cleanDataset, convert, lintFile } from 'loom/data';
 *   const r = await runDataPipeline('examples/customer-service/data.yaml');
 *
 * Pieces: ingest (readInputs), steps (normalizeStep, qualityFilterStep, piiStep, exactDedupStep, nearDedupStep,
 * boilerplateStep), split (assignSplits), formats (importRecord/exportRow, convert, LLaMA-Factory registries),
 * the linter (lintRows/lintFile) and the report (DatasetStatsBuilder, renderReportHtml).
 */
export { type DataConfig, type DataConfigInput, dataConfig } from '../config/data.ts';
export { boilerplateStep } from './dedup/boilerplate.ts';
export { exactDedupStep } from './dedup/exact.ts';
export { nearDedupStep } from './dedup/near.ts';
export { evaluateText, qualityFilterStep, resolveFiltersConfig } from './filters/index.ts';
export { formatStep, withSystemPrompt } from './format-step.ts';
export { fromAlpaca, toAlpaca } from './formats/alpaca.ts';
export { fromCanonical, toCanonical } from './formats/canonical.ts';
export { type ConvertOptions, type ConvertResult, convert, readDatasetFile } from './formats/convert.ts';
export {
  detectFormat,
  exportRow,
  FORMAT_NAMES,
  type FormatName,
  type FormatOptions,
  type InputFormatName,
  importRecord,
  rowKind,
} from './formats/index.ts';
export { readJsonRecords, writeRows } from './formats/io.ts';
export { readRegistry, readRegistryDatasets, registryEntryFor, writeRegistry } from './formats/llamafactory.ts';
export { fromOpenAi, toOpenAi } from './formats/openai.ts';
export { fromShareGpt, toShareGpt } from './formats/sharegpt.ts';
export { expandInputs, isMalformed, readInputs } from './ingest/index.ts';
export { detectLanguage } from './langid.ts';
export {
  formatLintReport,
  type LintCode,
  type LintFinding,
  type LintOptions,
  type LintReport,
  lintFile,
  lintRows,
  loadTokenCounter,
} from './lint.ts';
export { mergeDataShards } from './merge.ts';
export { createNormalizer, normalizeStep } from './normalize.ts';
export { createPiiDetector, piiStep } from './pii.ts';
export { runDataPipeline } from './pipeline.ts';
export { type DataReport, DatasetStatsBuilder, renderReportHtml, writeReport } from './report/index.ts';
export { buildSteps, type RunDataOptions, type RunDataResult } from './setup.ts';
export { parseShardSpec, runShardMerge } from './shard.ts';
export { assignSplits, planSplits } from './split.ts';
export { rowText, type Step, type StepContext } from './step.ts';
export { cleanDataset, datasetStats, dedupDataset, splitDataset } from './tasks.ts';
