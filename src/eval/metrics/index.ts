/** Public API of Loom's evaluation metrics. */

export { Rng } from '../../core/rng.ts';
export { Bleu, type BleuOptions, type BleuScore, type BleuSmoothMethod, computeBleu, formatBleu } from './bleu.ts';
export { BLEU_TOKENIZERS, type BleuTokenizerName, getBleuTokenizer } from './bleu-tokenizers.ts';
export { Chrf, type ChrfOptions, type ChrfScore, formatChrf } from './chrf.ts';
export {
  type ClassificationReport,
  type ClassReport,
  classificationReport,
  type ExtractOptions,
  extractLabel,
  NO_LABEL,
} from './classify.ts';
export { type CorpusMetric, numRefs, type RefStreams, SACREBLEU_VERSION } from './corpus.ts';
export {
  type ChoiceItem,
  type ChoiceResult,
  formatChoicePrompt,
  loadMultipleChoice,
  meanNll,
  perplexity,
  scoreChoice,
  scoreChoices,
} from './likelihood.ts';
export { porterStem } from './porter.ts';
export { pyFixed, pyRound } from './pyfmt.ts';
export { type RougeOptions, type RougeScore, RougeScorer, splitSentences } from './rouge.ts';
export {
  getRougeTokenizer,
  ROUGE_TOKENIZERS,
  type RougeTokenizer,
  type RougeTokenizerName,
} from './rouge-tokenizers.ts';
export {
  METRIC_NAMES,
  type MetricName,
  type MetricReport,
  type MetricRunOptions,
  readJsonlRows,
  readParallel,
  readSegments,
  type SegmentScore,
  scoreMetric,
} from './run.ts';
export {
  type BootstrapResult,
  bootstrapAggregate,
  bootstrapCorpus,
  bootstrapMean,
  estimateCi,
  meanMetric,
  type PairedResult,
  pairedApproxRandomization,
  pairedBootstrap,
} from './stats.ts';
export {
  checkJsonSchema,
  cjkAwareTokens,
  contains,
  exactMatch,
  type JsonCheck,
  matchesRegex,
  type NormalizeOptions,
  normalizeAnswer,
  SQUAD_NORMALIZE,
  tokenF1,
} from './text.ts';
